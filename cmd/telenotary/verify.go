package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/telenotary/telenotary/notary"
)

const verifySynopsis = `verify BUNDLE --keys FILE [--min-signatures K] [--origin ORIGIN]
       telenotary verify --receipt FILE --document FILE [--raw] --salt FILE --keys FILE
       telenotary verify --receipt FILE --commitment HEX --keys FILE

Prints VALID and what the receipt proves, or INVALID and why. Exit status:
0 valid, 1 invalid, 2 usage error or unreadable input.`

// maxInputFile bounds every file verify reads.
const maxInputFile = notary.MaxBundleSize

func runVerify(_ context.Context, env *environment, args []string) int {
	fs := newFlagSet(env, "verify", verifySynopsis)
	keys := fs.String("keys", "", "file of trusted verifier keys (the nodes' .pub keys), one per line; required")
	minSigs := fs.Int("min-signatures", 1, "how many distinct trusted keys must have signed the receipt's checkpoint")
	origin := fs.String("origin", "", "accept only receipts of the log with this origin")
	receiptFile := fs.String("receipt", "", "a receipt file, when document, salt and receipt come separately")
	docFile := fs.String("document", "", "the document the receipt is for (with --receipt)")
	saltFile := fs.String("salt", "", "file holding the document's salt, 64 hex digits (with --document)")
	commitment := fs.String("commitment", "", "the commitment, 64 hex digits, when the document is not at hand (with --receipt)")
	raw := fs.Bool("raw", false, "the --document is committed byte for byte, not as canonical JSON")
	pos, err := parseFlags(fs, env, args)
	if err != nil {
		return usageError(env.stderr, "verify", err)
	}
	fail := func(err error) int { return usageError(env.stderr, "verify", err) }

	if *keys == "" {
		return fail(errors.New("--keys is required: the file of verifier keys you trust"))
	}
	keyText, err := readInput(*keys, "keys file")
	if err != nil {
		return fail(err)
	}
	verifiers, err := notary.ParseVerifierKeys(keyText)
	if err != nil {
		return fail(fmt.Errorf("keys file %s: %w", *keys, err))
	}
	v, err := notary.NewVerifier(notary.Policy{Verifiers: verifiers, MinSignatures: *minSigs, Origin: *origin})
	if err != nil {
		return fail(fmt.Errorf("%w (check --min-signatures, --origin and the keys file)", err))
	}

	var res *notary.Result
	switch {
	case len(pos) == 1 && *receiptFile == "" && *docFile == "" && *saltFile == "" && *commitment == "":
		b, err := readInput(pos[0], "bundle")
		if err != nil {
			return fail(err)
		}
		bundle, err := notary.ParseBundle(b)
		if err != nil {
			return fail(fmt.Errorf("%s is not a readable telenotary bundle: %w", pos[0], err))
		}
		res, err = v.VerifyBundle(bundle)
		if err != nil {
			return invalid(env.stdout, err)
		}
	case len(pos) == 0 && *receiptFile != "":
		claim, err := separateClaim(*receiptFile, *docFile, *saltFile, *commitment, *raw)
		if err != nil {
			return fail(err)
		}
		if res, err = v.Verify(claim); err != nil {
			return invalid(env.stdout, err)
		}
	default:
		return fail(errors.New("give one bundle file, or --receipt with --document and --salt, or --receipt with --commitment"))
	}
	printValid(env.stdout, res, *minSigs)
	return exitOK
}

// separateClaim reads a claim whose parts come in separate files.
func separateClaim(receiptFile, docFile, saltFile, commitment string, raw bool) (notary.Claim, error) {
	b, err := readInput(receiptFile, "receipt")
	if err != nil {
		return notary.Claim{}, err
	}
	r, err := notary.ParseReceipt(b)
	if err != nil {
		return notary.Claim{}, fmt.Errorf("%s is not a readable telenotary receipt: %w", receiptFile, err)
	}
	claim := notary.Claim{Receipt: r}
	switch {
	case commitment != "" && docFile == "" && saltFile == "":
		if claim.Commitment, err = notary.ParseCommitment(strings.ToLower(strings.TrimSpace(commitment))); err != nil {
			return notary.Claim{}, fmt.Errorf("--commitment: %w", err)
		}
	case commitment == "" && docFile != "" && saltFile != "":
		doc, err := readInput(docFile, "document")
		if err != nil {
			return notary.Claim{}, err
		}
		if claim.Document = doc; !raw {
			if claim.Document, err = notary.CanonicalJSON(doc); err != nil {
				return notary.Claim{}, fmt.Errorf("document %s: %w (use --raw for a document that is not JSON)", docFile, err)
			}
		}
		s, err := readInput(saltFile, "salt")
		if err != nil {
			return notary.Claim{}, err
		}
		if claim.Salt, err = notary.ParseSalt(strings.ToLower(strings.TrimSpace(string(s)))); err != nil {
			return notary.Claim{}, fmt.Errorf("salt file %s: %w", saltFile, err)
		}
	default:
		return notary.Claim{}, errors.New("with --receipt, give --document and --salt, or --commitment")
	}
	return claim, nil
}

// readInput reads a file of at most maxInputFile bytes ("-" is stdin).
func readInput(path, what string) ([]byte, error) {
	var r io.Reader
	if path == "-" {
		r = os.Stdin
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("cannot read %s: %w", what, err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxInputFile+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read %s %s: %w", what, path, err)
	}
	if len(b) > maxInputFile {
		return nil, fmt.Errorf("%s %s is larger than %d bytes", what, path, maxInputFile)
	}
	return b, nil
}

func invalid(w io.Writer, err error) int {
	fmt.Fprintf(w, "INVALID: %s\n", notary.Reason(err))
	fmt.Fprintf(w, "  detail: %v\n", err)
	return exitInvalid
}

const timeFormat = "2006-01-02 15:04:05.000 UTC"

func printValid(w io.Writer, res *notary.Result, minSigs int) {
	fmt.Fprintf(w, "VALID: %s notarized %s\n", res.Leaf.Kind, res.Leaf.Time().Format(timeFormat))
	fmt.Fprintf(w, "  log:        %s\n", res.Origin)
	fmt.Fprintf(w, "  index:      %d, in a checkpoint of %d entries signed %s\n", res.Index, res.Checkpoint.Size, res.Checkpoint.Time().Format(timeFormat))
	fmt.Fprintf(w, "  signed by:  %s (%d required)\n", strings.Join(res.Signers, ", "), max(minSigs, 1))
	fmt.Fprintf(w, "  commitment: %s\n", res.Leaf.Commitment)
	if !res.Leaf.Link.IsZero() {
		fmt.Fprintf(w, "  linked to:  %s\n", res.Leaf.Link)
	}
}
