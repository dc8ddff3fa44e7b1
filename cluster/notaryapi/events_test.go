package notaryapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
)

// TestEventsReportsKeepAlives: the comment lines of the stream (the one a
// node sends when the stream opens, and its keep-alives while idle) reach
// the OnKeepAlive callback in their place among the events; without the
// option they are skipped as before.
func TestEventsReportsKeepAlives(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write([]byte(": telenotary events\n\n" +
			": keep-alive\n\n" +
			"event: cluster\ndata: {\"type\":\"cluster\",\"change\":\"leader\",\"node\":\"node-2\"}\n\n" +
			": keep-alive\n\n"))
	}))
	defer srv.Close()
	c := NewClient(ClientConfig{Nodes: []string{srv.URL}})

	var got []string
	err := c.Events(context.Background(), srv.URL, func(e Event) { got = append(got, "event "+e.Node) },
		OnKeepAlive(func() { got = append(got, "keep-alive") }))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"keep-alive", "keep-alive", "event node-2", "keep-alive"}; !slices.Equal(got, want) {
		t.Errorf("calls %q, want %q", got, want)
	}

	got = nil
	if err := c.Events(context.Background(), srv.URL, func(e Event) { got = append(got, "event "+e.Node) }); err != nil {
		t.Fatal(err)
	}
	if want := []string{"event node-2"}; !slices.Equal(got, want) {
		t.Errorf("without the option: calls %q, want %q", got, want)
	}
}
