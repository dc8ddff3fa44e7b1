package tui

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
)

const (
	maxFeed      = 2000
	feedOnResume = 500 // the feed keeps this many once unpaused
)

// feedItem is one notarization of the feed, with the texts the filter
// matches, made once.
type feedItem struct {
	leaf               notaryapi.LeafInfo
	kind, commit, link string
}

// feedState is the live feed: newest last. While paused, new items are
// counted and kept (up to maxFeed) but not shown.
type feedState struct {
	items  []feedItem
	paused bool
	shown  int // items visible while paused
	missed uint64
}

func (f *feedState) add(leaves []notaryapi.LeafInfo) {
	for _, l := range leaves {
		if f.paused && len(f.items) >= maxFeed {
			f.missed++
			continue
		}
		it := feedItem{leaf: l, kind: l.Kind.String(), commit: l.Commitment.String()}
		if !l.Link.IsZero() {
			it.link = l.Link.String()
		}
		f.items = append(f.items, it)
	}
	if !f.paused && len(f.items) > maxFeed {
		f.items = slices.Delete(f.items, 0, len(f.items)-feedOnResume)
	}
}

func (f *feedState) togglePause() {
	f.paused = !f.paused
	if f.paused {
		f.shown = len(f.items)
		return
	}
	f.missed = 0
	if len(f.items) > maxFeed {
		f.items = slices.Delete(f.items, 0, len(f.items)-feedOnResume)
	}
}

// visible returns, newest first, the filtered items from the skip-th to
// at most limit of them, and how many match in all. It runs at every
// frame: without a filter it copies only what is shown.
func (f *feedState) visible(filter string, skip, limit int) (shown []feedItem, total int) {
	end := len(f.items)
	if f.paused {
		end = f.shown
	}
	if filter == "" {
		lo, hi := max(0, end-skip-limit), max(0, end-skip)
		for i := hi - 1; i >= lo; i-- {
			shown = append(shown, f.items[i])
		}
		return shown, end
	}
	filter = strings.ToLower(filter)
	for i := end - 1; i >= 0; i-- {
		it := f.items[i]
		if strings.Contains(it.kind, filter) || strings.HasPrefix(it.commit, filter) || it.link != "" && strings.HasPrefix(it.link, filter) {
			if total >= skip && len(shown) < limit {
				shown = append(shown, it)
			}
			total++
		}
	}
	return shown, total
}

// matches reports whether any field contains the filter, ignoring case.
func matches(filter string, fields ...string) bool {
	filter = strings.ToLower(filter)
	for _, f := range fields {
		if strings.Contains(strings.ToLower(f), filter) {
			return true
		}
	}
	return false
}

var feedCols = []column{
	{title: "TIME (UTC)", width: 12},
	{title: "KIND", width: 15},
	{title: "INDEX", width: 10, right: true},
	{title: "COMMITMENT", width: 16, flex: true},
	{title: "LINK", width: 22, drop: 1},
}

// feedTab is the Feed tab: the live notarizations of the event stream,
// newest first, which the operator may pause and filter. An event lists
// only the last few leaves of what it counts (Recent against Count): the
// tab says when what it shows is such a sample.
//
// A dispense, an allowance and a revocation show the prescription they
// link to, shortened; a dispense also its fill, "fill k/n", once the
// prescription's status (asked for when a dispense of it shows up, a few
// at a time) lists it. The filter matches a link's prefix too, so a
// prescription's commitment shows its whole life.
type feedTab struct {
	common
	feed   feedState
	filter filter
	scroll int
	// counted and listed are the notarizations the events counted, and
	// those they listed.
	counted, listed uint64
	// rx is what the tab knows of prescriptions' fills, by commitment;
	// lookups counts the status requests out.
	rx      map[notary.Commitment]*rxFills
	lookups int
}

func newFeedTab(c common) *feedTab {
	return &feedTab{common: c, filter: newFilter(), rx: map[notary.Commitment]*rxFills{}}
}

// Init does nothing: the feed comes from the event stream.
func (f *feedTab) Init() tea.Cmd { return nil }

// Update takes the notarizations of the event stream and the tab's keys.
func (f *feedTab) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case eventMsg:
		if n := msg.ev.Notarized; msg.ev.Type == "notarized" && n != nil {
			f.feed.add(n.Recent)
			f.counted += max(n.Count, uint64(len(n.Recent)))
			f.listed += uint64(len(n.Recent))
			return f, f.lookupFills(n.Recent)
		}
	case rxStatusMsg:
		return f, f.onStatus(msg)
	case tea.KeyMsg:
		return f, f.onKey(msg)
	}
	return f, nil
}

func (f *feedTab) onKey(msg tea.KeyMsg) tea.Cmd {
	k := f.keys
	switch {
	case f.filter.in.active:
		f.scroll = 0
		return f.filter.onKey(msg)
	case key.Matches(msg, k.Filter):
		return f.filter.start()
	case key.Matches(msg, k.Pause):
		f.feed.togglePause()
	case key.Matches(msg, k.Up):
		f.move(-1)
	case key.Matches(msg, k.Down):
		f.move(1)
	case key.Matches(msg, k.Top):
		f.move(-1 << 30)
	case key.Matches(msg, k.Bottom):
		f.move(1 << 30)
	}
	return nil
}

func (f *feedTab) move(d int) {
	_, total := f.feed.visible(f.filter.value, 0, 0)
	f.scroll = scrollBy(f.scroll, d, total, f.rows())
}

// rows is how many notarizations fit under the tab's top line and header.
func (f *feedTab) rows() int { return max(0, f.height-2) }

// View is the live notarizations, newest first.
func (f *feedTab) View() string {
	st := f.styles
	_, total := f.feed.visible(f.filter.value, 0, 0)
	off, _ := window(total, f.rows(), f.scroll)
	items, _ := f.feed.visible(f.filter.value, off, f.rows())
	state := st.ok.Render("LIVE")
	if f.feed.paused {
		state = st.warn.Render(fmt.Sprintf("PAUSED (%s new)", fmtInt(len(f.feed.items)-f.feed.shown+int(f.feed.missed))))
	}
	top := fmt.Sprintf("%s · %s shown", state, fmtInt(total)) + f.filter.describe()
	if f.counted > f.listed {
		top += st.warn.Render(fmt.Sprintf(" · a sample: the events listed %s of %s notarizations", fmtInt(f.listed), fmtInt(f.counted)))
	}
	out := []string{top}
	rows := make([][]cell, 0, len(items))
	for _, it := range items {
		l := it.leaf
		kind := plain(it.kind)
		if l.Kind == notary.KindRevocation {
			kind.style = st.warn
		}
		rows = append(rows, []cell{
			plain(time.UnixMilli(l.Timestamp).UTC().Format("15:04:05.000")), kind,
			plain(strconv.FormatUint(l.Index, 10)), plain(it.commit), plain(f.linkText(l))})
	}
	header, lines := renderTable(*st, feedCols, rows, f.width)
	out = append(out, header)
	if total == 0 {
		out = append(out, st.muted.Render("no notarizations yet"))
	}
	return joinLines(append(out, lines...), f.height)
}

// lookupFills asks for the status of the prescriptions of the dispenses
// among leaves whose fill the tab does not know.
func (f *feedTab) lookupFills(leaves []notaryapi.LeafInfo) tea.Cmd {
	var cmds []tea.Cmd
	for _, l := range leaves {
		if l.Kind != notary.KindDispense || l.Link.IsZero() {
			continue
		}
		r := f.rxOf(l.Link)
		if _, known := r.fill[l.Commitment]; !known {
			cmds = append(cmds, f.lookup(l.Link, r))
		}
	}
	return tea.Batch(cmds...)
}

// rxOf is what the tab knows of prescription c, made empty when nothing.
func (f *feedTab) rxOf(c notary.Commitment) *rxFills {
	if r := f.rx[c]; r != nil {
		return r
	}
	if len(f.rx) >= maxRx {
		f.forgetRx()
	}
	r := &rxFills{fill: map[notary.Commitment]int{}}
	f.rx[c] = r
	return r
}

// forgetRx drops the prescriptions no item of the feed links to and no
// request is out for.
func (f *feedTab) forgetRx() {
	shown := map[notary.Commitment]bool{}
	for _, it := range f.feed.items {
		shown[it.leaf.Link] = true
	}
	for c, r := range f.rx {
		if !shown[c] && !r.inFlight {
			delete(f.rx, c)
		}
	}
}

// lookup asks for prescription c's status, unless a request for it is out
// (then it asks again when that one answers) or too many are.
func (f *feedTab) lookup(c notary.Commitment, r *rxFills) tea.Cmd {
	switch {
	case !f.poll:
		return nil
	case r.inFlight:
		r.again = true
		return nil
	case f.lookups >= maxFillLookups:
		return nil
	}
	r.inFlight = true
	f.lookups++
	return f.src.prescriptionStatus(c)
}

// onStatus takes a prescription's status: the fill of each of its
// dispenses, and how many it allows.
func (f *feedTab) onStatus(msg rxStatusMsg) tea.Cmd {
	r := f.rxOf(msg.link)
	if r.inFlight {
		r.inFlight = false
		f.lookups--
	}
	if msg.err == nil && msg.st != nil {
		_, allowed, _ := msg.st.State()
		r.fills = allowed
		for i, d := range msg.st.Dispenses {
			if d != nil {
				r.fill[d.Leaf.Commitment] = i + 1
			}
		}
	}
	if !r.again {
		return nil
	}
	r.again = false
	for _, it := range f.feed.items {
		if it.leaf.Kind == notary.KindDispense && it.leaf.Link == msg.link {
			if _, known := r.fill[it.leaf.Commitment]; !known {
				return f.lookup(msg.link, r)
			}
		}
	}
	return nil
}

// linkText is what the LINK column says of a leaf: the commitment it links
// to, shortened; for a dispense, the fill when known; for an allowance,
// the fills it allows.
func (f *feedTab) linkText(l notaryapi.LeafInfo) string {
	if l.Link.IsZero() {
		return ""
	}
	text := short(l.Link)
	switch l.Kind {
	case notary.KindDispense:
		if r := f.rx[l.Link]; r != nil {
			if k, ok := r.fill[l.Commitment]; ok {
				text += fmt.Sprintf(" fill %d/%d", k, r.fills)
			}
		}
	case notary.KindAllowance:
		if a, err := notary.ParseAllowance(l.Commitment); err == nil {
			text += fmt.Sprintf(" %d fills", a.Fills)
		}
	}
	return text
}

// ShortHelp is the tab's keys.
func (f *feedTab) ShortHelp() []key.Binding {
	return []key.Binding{f.keys.Up, f.keys.Down, f.keys.Pause, f.keys.Filter}
}

// FullHelp is the tab's keys, in one column.
func (f *feedTab) FullHelp() [][]key.Binding {
	return [][]key.Binding{{f.keys.Up, f.keys.Down, f.keys.Top, f.keys.Bottom, f.keys.Pause, f.keys.Filter}}
}

// Modal is the filter while it is typed.
func (f *feedTab) Modal() *modal { return f.filter.in.modal() }
