package tui

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
)

// A prescription's life after it is issued, as the console shows it: the
// Feed marks each dispense with the fill it took (from the prescription's
// status, which the cluster answers with the dispenses in log order), and
// the Alerts tab watches the dispenses and revocations the cluster
// refuses for the signs of fraud.

// The rule of the fraud alert (docs/OPERATIONS.md, "Possible fraud"):
// every refusal but fill_taken is a sign that someone tried what they may
// not: a wrong proof (bad_proof: the till does not hold the bundle), a
// revoked prescription (revoked), one with no fill left (fully_dispensed),
// or one the log never saw (unknown_prescription). A pharmacy that loses
// the race for a fill to another gets fill_taken and claims the next one:
// that is normal wherever two tills serve one patient, and is not counted.
// When the signs refused within the last minute reach Config.FraudThreshold
// (DefaultFraudThreshold), the Alerts tab raises one ALERT, with the count
// by reason; it clears, once, when the last minute holds fewer than half
// as many.
const (
	// fraudWindow is the time over which refusals are counted.
	fraudWindow = time.Minute
	// codeFillTaken is the refusal of a race lost: not a sign of fraud.
	codeFillTaken = "fill_taken"
)

// refusal is what one event said the cluster refused.
type refusal struct {
	at     time.Time
	counts map[string]int
}

// refusalWindow is the refusals of the last fraudWindow, oldest first.
type refusalWindow struct {
	list []refusal
}

// add records an event's refusals, received at.
func (w *refusalWindow) add(at time.Time, counts map[string]int) {
	if len(counts) == 0 {
		return
	}
	w.list = append(w.list, refusal{at: at, counts: counts})
}

// counts drops what is older than the window as of now, and returns the
// refusals by code within it and how many of them are signs of fraud.
func (w *refusalWindow) counts(now time.Time) (byCode map[string]int, signs int) {
	from := now.Add(-fraudWindow)
	i := 0
	for i < len(w.list) && !w.list[i].at.After(from) {
		i++
	}
	w.list = slices.Delete(w.list, 0, i)
	byCode = map[string]int{}
	for _, r := range w.list {
		for code, n := range r.counts {
			byCode[code] += n
			if code != codeFillTaken {
				signs += n
			}
		}
	}
	return byCode, signs
}

// refusalText lists counts by code, signs of fraud first, each group by
// name: "bad_proof 4, revoked 2".
func refusalText(byCode map[string]int, fillTaken bool) string {
	codes := make([]string, 0, len(byCode))
	for c, n := range byCode {
		if n > 0 && (c != codeFillTaken || fillTaken) {
			codes = append(codes, c)
		}
	}
	slices.SortFunc(codes, func(a, b string) int {
		if (a == codeFillTaken) != (b == codeFillTaken) {
			if a == codeFillTaken {
				return 1
			}
			return -1
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(codes))
	for i, c := range codes {
		parts[i] = fmt.Sprintf("%s %s", c, fmtInt(byCode[c]))
	}
	return strings.Join(parts, ", ")
}

// fraudWatch raises and clears the fraud alert.
type fraudWatch struct {
	window refusalWindow
	active bool
}

// check returns the alert to add as of now, if any: raised when the signs
// within the window reach threshold, cleared when they fall below half.
func (f *fraudWatch) check(now time.Time, threshold int) (lv level, text string, ok bool) {
	byCode, signs := f.window.counts(now)
	switch {
	case !f.active && signs >= threshold:
		f.active = true
		what := "dispenses or revocations"
		if signs == 1 {
			what = "dispense or revocation"
		}
		text = fmt.Sprintf("possible fraud: %d %s refused in the last minute: %s (alert at %d a minute",
			signs, what, refusalText(byCode, false), threshold)
		if n := byCode[codeFillTaken]; n > 0 {
			text += fmt.Sprintf("; %s fill_taken, races between pharmacies, not counted", fmtInt(n))
		}
		text += ")"
		return levelBad, text, true
	case f.active && 2*signs < threshold:
		f.active = false
		return levelInfo, fmt.Sprintf("refused dispenses back to normal: %d signs of fraud in the last minute", signs), true
	}
	return 0, "", false
}

// rxFills is what the Feed knows of one prescription's fills, from its
// status.
type rxFills struct {
	fills int                       // fills allowed; 0 while unknown
	fill  map[notary.Commitment]int // each dispense's fill, from 1
	// inFlight: a status request is out; again: a dispense not in its
	// answer has come since it was sent.
	inFlight, again bool
}

// Bounds of the Feed's fill lookups.
const (
	// maxFillLookups is the status requests out at once: under a flood of
	// dispenses, the rest are shown without their fill.
	maxFillLookups = 4
	// maxRx is the prescriptions whose fills the Feed keeps; beyond it,
	// those no item shows are forgotten.
	maxRx = 4096
)

// rxStatusMsg is a prescription's status, or why there is none.
type rxStatusMsg struct {
	link notary.Commitment
	st   *notary.PrescriptionStatus
	err  error
}

// prescriptionStatus asks the cluster for a prescription's status, as a
// linearizable read: it holds every dispense an event has reported.
func (s *source) prescriptionStatus(c notary.Commitment) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
		defer cancel()
		st, err := s.watch.PrescriptionStatus(ctx, c, true)
		return rxStatusMsg{link: c, st: st, err: err}
	}
}

// short is a commitment shortened for a table cell: its first 8 hex
// digits.
func short(c notary.Commitment) string { return c.String()[:8] }

// eventRefusals is a notarized event's refusals; nil for any other event.
func eventRefusals(ev notaryapi.Event) map[string]int {
	if n := ev.Notarized; ev.Type == notaryapi.EventNotarized && n != nil {
		return n.Refused
	}
	return nil
}
