// Room tokens are JWTs signed by the signalling server (or the app's
// backend). The page only reads their claims to show who is joining which
// room; the server checks the signature when the page joins.

/**
 * decodeToken returns the claims of a room token without checking its
 * signature: {room, role, sub, exp (a Date or null), expired}.
 * It throws an Error with a sentence for a string that is not a JWT.
 */
export function decodeToken(token) {
  const parts = String(token).trim().split('.');
  if (parts.length !== 3 || parts.some((p) => p === '')) {
    throw new Error('this is not a room token (a token has three parts separated by dots)');
  }
  let claims;
  try {
    claims = JSON.parse(base64urlDecode(parts[1]));
  } catch {
    throw new Error('the room token is damaged: its claims cannot be read');
  }
  if (claims === null || typeof claims !== 'object') {
    throw new Error('the room token is damaged: its claims are not an object');
  }
  const role = claims.role;
  if (role !== 'patient' && role !== 'physician') {
    throw new Error('the room token names no role (patient or physician)');
  }
  if (typeof claims.room !== 'string' || claims.room === '') {
    throw new Error('the room token names no room');
  }
  const exp = typeof claims.exp === 'number' ? new Date(claims.exp * 1000) : null;
  return {
    room: claims.room,
    role,
    sub: typeof claims.sub === 'string' ? claims.sub : '',
    exp,
    expired: exp !== null && exp.getTime() < Date.now(),
  };
}

function base64urlDecode(s) {
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4);
  const bin = atob(b64);
  const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
}

/**
 * tokenFromFragment reads the token from a URL fragment such as
 * "#token=eyJ...". The fragment never reaches the server, so the token stays
 * out of its logs.
 */
export function tokenFromFragment(hash) {
  const params = new URLSearchParams(String(hash).replace(/^#/, ''));
  return params.get('token') || '';
}
