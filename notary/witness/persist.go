package witness

import (
	"errors"
	"fmt"
	"os"
)

// maxBatch bounds the state files one group commit writes.
const maxBatch = 256

// persister records state files durably, batching the requests that wait
// at once into one group commit: every new file is written, the batch is
// flushed to disk, the files are renamed into place, and the renames are
// flushed; a request returns only after that. On Linux each flush is one
// syncfs of the data directory's filesystem whatever the batch's size;
// elsewhere each file and then the directory are synced one by one.
type persister struct {
	dir  string
	reqs chan *persistReq
	stop chan struct{}
	done chan struct{}
}

type persistReq struct {
	path string
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

// write records data as the file at path durably.
func (p *persister) write(path string, data []byte) error {
	r := &persistReq{path: path, data: data, err: make(chan error, 1)}
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

// commit writes a batch of files; each request gets its own outcome.
func (p *persister) commit(batch []*persistReq) {
	errs := make([]error, len(batch))
	files := make([]*os.File, len(batch))
	for i, r := range batch {
		files[i], errs[i] = writeTemp(r.path, r.data)
	}
	if err := syncFiles(p.dir, files); err != nil {
		for i := range errs {
			errs[i] = firstErr(errs[i], fmt.Errorf("flush: %w", err))
		}
	}
	for i, r := range batch {
		if files[i] != nil {
			files[i].Close()
		}
		if errs[i] == nil {
			errs[i] = os.Rename(r.path+".tmp", r.path)
		}
		if errs[i] != nil {
			os.Remove(r.path + ".tmp")
		}
	}
	if err := syncDir(p.dir, files); err != nil {
		for i := range errs {
			errs[i] = firstErr(errs[i], fmt.Errorf("flush the renames: %w", err))
		}
	}
	for i, r := range batch {
		r.err <- errs[i]
	}
}

func firstErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// writeTemp writes data to path.tmp and returns it open, not yet synced.
func writeTemp(path string, data []byte) (*os.File, error) {
	f, err := os.OpenFile(path+".tmp", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
