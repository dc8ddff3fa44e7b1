package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/telenotary/telenotary/cluster/notaryapi"
)

// StageTime is the mean time a stage of the write path took over a run,
// as the leader timed it (notaryapi.WriteStages).
type StageTime struct {
	notaryapi.WriteStage
	// Count is how many times the leader timed it during the run: once a
	// request or once a batch.
	Count uint64
	// Mean is its mean time.
	Mean time.Duration
}

// stageSums are a node's stage histograms at one moment: each stage's
// total seconds and count.
type stageSums map[string]struct {
	sum   float64
	count uint64
}

// maxMetricsBody bounds the /metrics page read.
const maxMetricsBody = 8 << 20

// scrapeStages reads the write path's stage histograms from a node's
// GET /metrics.
func scrapeStages(ctx context.Context, hc *http.Client, node string) (stageSums, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(node, "/")+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reading the leader's metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("reading the leader's metrics: %s answered HTTP %d", node, resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(io.LimitReader(resp.Body, maxMetricsBody))
	if err != nil {
		return nil, fmt.Errorf("reading the leader's metrics: %w", err)
	}
	fam, ok := families[notaryapi.WriteStageMetric]
	if !ok {
		return nil, fmt.Errorf("%s has no %s metric (a node of an older version?)", node, notaryapi.WriteStageMetric)
	}
	out := stageSums{}
	for _, m := range fam.GetMetric() {
		h := m.GetHistogram()
		for _, l := range m.GetLabel() {
			if l.GetName() == "stage" && h != nil {
				out[l.GetValue()] = struct {
					sum   float64
					count uint64
				}{h.GetSampleSum(), h.GetSampleCount()}
			}
		}
	}
	return out, nil
}

// stageTrace is a run's breakdown in progress: the leader and its stage
// histograms when the run started.
type stageTrace struct {
	hc     *http.Client
	leader string
	before stageSums
}

// startTrace finds the leader and reads its stage histograms.
func startTrace(ctx context.Context, client *notaryapi.Client, hc *http.Client) (*stageTrace, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	st, err := client.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("--trace: finding the leader: %w", err)
	}
	t := &stageTrace{hc: hc, leader: st.Leader.HTTPAddr}
	if t.leader == "" {
		return nil, errors.New("--trace: no leader known")
	}
	if t.before, err = scrapeStages(ctx, hc, t.leader); err != nil {
		return nil, fmt.Errorf("--trace: %w", err)
	}
	return t, nil
}

// stop reads the leader's histograms again and returns what each stage
// took in between.
func (t *stageTrace) stop(ctx context.Context) ([]StageTime, error) {
	after, err := scrapeStages(ctx, t.hc, t.leader)
	if err != nil {
		return nil, fmt.Errorf("--trace: %w", err)
	}
	return stageTimes(t.before, after), nil
}

// stageTimes is what the stages took between two readings.
func stageTimes(before, after stageSums) []StageTime {
	var out []StageTime
	for _, s := range notaryapi.WriteStages {
		b, a := before[s.Name], after[s.Name]
		st := StageTime{WriteStage: s}
		if a.count > b.count {
			st.Count = a.count - b.count
			st.Mean = time.Duration((a.sum - b.sum) / float64(st.Count) * float64(time.Second))
		}
		out = append(out, st)
	}
	return out
}

// printStages writes the breakdown as a table.
func printStages(w io.Writer, leader string, stages []StageTime) {
	fmt.Fprintf(w, "stages:     mean time of each stage of the write path on the leader (%s), in order\n", leader)
	for _, s := range stages {
		per := "request"
		if s.PerBatch {
			per = "batch"
		}
		if s.Count == 0 {
			fmt.Fprintf(w, "  %-7s %-8s      -     (not timed in this run)  %s\n", s.Name, per, s.What)
			continue
		}
		fmt.Fprintf(w, "  %-7s %-8s %8.3f ms  %9d times  %s\n", s.Name, per, float64(s.Mean.Microseconds())/1000, s.Count, s.What)
	}
}
