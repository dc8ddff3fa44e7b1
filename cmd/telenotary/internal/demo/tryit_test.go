package demo

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/telenotary/telenotary/session/signalapi"
)

// TestTryItReachesTheConsole: what the demo prints to try by hand (the
// join links, the curl line, the verify line) is also the text of the
// console's Try it tab, and in TRY-IT.txt; its short join links redirect to
// the full ones, which a console's rows can hold without breaking a link
// across them; other paths still reach the signalling server.
func TestTryItReachesTheConsole(t *testing.T) {
	signal := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "signal "+r.URL.Path) })
	d := &run{dir: t.TempDir()}
	srv := httptest.NewServer(d.routes(signal))
	defer srv.Close()
	d.base = srv.URL
	room := &signalapi.CreateRoomResponse{Room: "demo", Tokens: map[signalapi.Role]string{
		signalapi.RolePatient: "patient.token.jwt", signalapi.RolePhysician: "physician.token.jwt"}}
	if err := d.writeHowTo(room); err != nil {
		t.Fatal(err)
	}

	text := d.consoleConfig().TryIt
	file, err := os.ReadFile(filepath.Join(d.dir, howToFile))
	if err != nil {
		t.Fatal(err)
	}
	if text == "" || text != string(file) {
		t.Fatalf("the console's Try it text is not TRY-IT.txt:\n%s\n---\n%s", text, file)
	}
	for _, want := range []string{
		"  physician: " + srv.URL + "/try/physician\n", "  patient:   " + srv.URL + "/try/patient\n",
		srv.URL + "/app/#token=physician.token.jwt\n", srv.URL + "/app/#token=patient.token.jwt\n",
		"/v1/rooms\n", "telenotary verify " + d.dir + "/bundles/<file>.json --keys " + d.dir + "/keys.pub --min-signatures 2\n",
		"telenotary dispense " + d.dir + "/bundles/prescription-<file>.json --pharmacy-token-file " + filepath.Join(d.dir, "pharmacy.tok") + " --nodes ",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the Try it text lacks %q:\n%s", want, text)
		}
	}

	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string) *http.Response {
		t.Helper()
		resp, err := client.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	for role, token := range room.Tokens {
		resp := get("/try/" + string(role))
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || loc != srv.URL+"/app/#token="+token {
			t.Errorf("/try/%s: %d to %q; want 302 to the %s's join link", role, resp.StatusCode, loc, role)
		}
	}
	if resp := get("/try/nobody"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("/try/nobody: %d; want 404", resp.StatusCode)
	}
	resp := get("/app/")
	if body, _ := io.ReadAll(resp.Body); string(body) != "signal /app/" {
		t.Errorf("/app/ reaches %q; want the signalling server", body)
	}
}
