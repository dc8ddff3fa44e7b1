package bench

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/telenotary/telenotary/cluster/notaryapi"
)

// TestNotarizeTrace: with Trace, a run reports every stage of the write
// path in order, as the leader timed them during the run: the request
// stages once per request, the batch stages at least once, the parts no
// longer than the whole, cosign not timed with one signature asked; and
// the report prints the table.
func TestNotarizeTrace(t *testing.T) {
	url, _ := startTestNode(t)
	const clients = 2
	var out strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := Notarize(ctx, NotarizeConfig{Nodes: []string{url}, Token: testSubmitterToken, Direct: true,
		Clients: clients, Batch: 1, Duration: 300 * time.Millisecond, Trace: true, Out: io.MultiWriter(&out)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || len(res.Stages) != len(notaryapi.WriteStages) {
		t.Fatalf("%d requests, %d stages; want some requests and %d stages", res.Requests, len(res.Stages), len(notaryapi.WriteStages))
	}
	by := map[string]StageTime{}
	for i, s := range res.Stages {
		if s.Name != notaryapi.WriteStages[i].Name {
			t.Errorf("stage %d is %s, want %s", i, s.Name, notaryapi.WriteStages[i].Name)
		}
		by[s.Name] = s
	}
	// The clients' last requests may be cut off by the end of the run
	// after the leader timed some of their stages.
	for _, name := range []string{"read", "queue", "answer", "proof", "write", "total"} {
		if c := by[name].Count; c < res.Requests || c > res.Requests+clients {
			t.Errorf("%s timed %d times for %d requests", name, c, res.Requests)
		}
	}
	for _, name := range []string{"append", "commit", "apply", "sign"} {
		if s := by[name]; s.Count == 0 || s.Count > res.Requests+clients || s.Mean <= 0 {
			t.Errorf("%s: timed %d times, mean %v, for %d requests", name, s.Count, s.Mean, res.Requests)
		}
	}
	if by["cosign"].Count != 0 {
		t.Errorf("cosign timed %d times with one signature asked", by["cosign"].Count)
	}
	total := by["total"].Mean
	for _, name := range []string{"read", "queue", "commit", "apply", "answer", "proof", "write"} {
		if by[name].Mean > total {
			t.Errorf("%s took %v on average, more than a whole request (%v)", name, by[name].Mean, total)
		}
	}
	if by["sign"].Mean > by["apply"].Mean || by["append"].Mean > by["commit"].Mean {
		t.Errorf("a part took longer than its whole: sign %v of apply %v, append %v of commit %v", by["sign"].Mean, by["apply"].Mean, by["append"].Mean, by["commit"].Mean)
	}
	if !strings.Contains(out.String(), "stages:") || !strings.Contains(out.String(), "commit  batch") {
		t.Errorf("the report has no stage table:\n%s", out.String())
	}
}
