package witness

import (
	"errors"
	"fmt"
	"os"
)

// maxBatch bounds the state records one group commit writes.
const maxBatch = 1024

// persister records the logs' states durably, batching the requests that
// wait at once into one group commit: each record is written in place in
// its log's state file, then the batch is flushed, and only then does any
// request of the batch return. On Linux the flush is one syncfs of the
// data directory's filesystem whatever the batch's size; elsewhere each
// file is synced in turn.
type persister struct {
	dir  string
	reqs chan *persistReq
	stop chan struct{}
	done chan struct{}
}

type persistReq struct {
	f    *os.File
	data []byte
	err  chan error
}

// errClosed answers a request after the witness was closed.
var errClosed = errors.New("witness closed")

func newPersister(dir string) *persister {
	p := &persister{dir: dir, reqs: make(chan *persistReq), stop: make(chan struct{}), done: make(chan struct{})}
	go p.run()
	return p
}

// write records data at the start of f durably.
func (p *persister) write(f *os.File, data []byte) error {
	r := &persistReq{f: f, data: data, err: make(chan error, 1)}
	select {
	case p.reqs <- r:
	case <-p.stop:
		return errClosed
	}
	return <-r.err
}

func (p *persister) close() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}

func (p *persister) run() {
	defer close(p.done)
	batch := make([]*persistReq, 0, maxBatch)
	for {
		select {
		case r := <-p.reqs:
			batch = append(batch[:0], r)
		case <-p.stop:
			return
		}
	more:
		for len(batch) < maxBatch {
			select {
			case r := <-p.reqs:
				batch = append(batch, r)
			default:
				break more
			}
		}
		p.commit(batch)
	}
}

// commit writes a batch of records; each request gets its own outcome.
func (p *persister) commit(batch []*persistReq) {
	errs := make([]error, len(batch))
	files := make([]*os.File, 0, len(batch))
	for i, r := range batch {
		if _, errs[i] = r.f.WriteAt(r.data, 0); errs[i] == nil {
			files = append(files, r.f)
		}
	}
	if err := syncFiles(p.dir, files); err != nil {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = fmt.Errorf("flush: %w", err)
			}
		}
	}
	for i, r := range batch {
		r.err <- errs[i]
	}
}
