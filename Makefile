# telenotary — the commands the README and CI use.
GO        ?= go
FUZZTIME  ?= 1m
BENCHTIME ?= 1x

.PHONY: test build vet bench bench-kv bench-join bench-100m bench-rqlite fuzz vectors campaign clean

## test: vet, then every test with the race detector (what CI runs)
test: vet
	$(GO) test -race -count=1 ./...

build:
	$(GO) build -o bin/telenotary ./cmd/telenotary

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...

## bench: the full-size benchmarks of docs/BENCHMARKS.md (10M leaves; minutes)
bench:
	cd notary/filestore && $(GO) test -run '^$$' -bench Append -benchtime 10000x
	cd notary/filestore && $(GO) test -run '^$$' -bench Append -benchtime 10000x -bench.sync
	cd notary/filestore && $(GO) test -run '^$$' -bench 'InclusionProof|Find' -bench.leaves 10000000
	cd notary && $(GO) test -run '^$$' -bench .

## bench-kv: the filestore against pebble and bbolt on the same append workload, from the
## module of its own in notary/filestore/kvcompare; KV_LEAVES leaves into each store (1000000
## takes a few minutes, 10000000 gives the figure in docs/BENCHMARKS.md), KV_STORES the stores
## to run, separated by | (KV_STORES='filestore|pebble')
KV_LEAVES ?= 1000000
KV_STORES ?= filestore|filestore-sync|pebble|bbolt|bbolt-sync
bench-kv:
	cd notary/filestore/kvcompare && $(GO) test -run '^$$' -timeout 0 -bench 'Append/^($(KV_STORES))$$' -benchtime $$(( $(KV_LEAVES) / 1000 ))x

## bench-join: a 3-node cluster of processes grows its log to JOIN_LEAVES leaves, then a fourth
## node joins through a snapshot; reports the time to join, the snapshot's bytes, disk and RSS
JOIN_LEAVES ?= 10000000
bench-join:
	cd e2e && $(GO) test -count=1 -timeout 0 -run '^TestJoinGrownLog$$' -v -join.leaves $(JOIN_LEAVES)

## bench-rqlite: one client writing one commitment at a time to a 3-node cluster and to a 3-node
## rqlite cluster, interleaved rounds (docs/BENCHMARKS.md). It builds rqlited RQLITE_VERSION from
## the module proxy into a temporary directory first (cgo: it needs a C compiler).
RQLITE_VERSION ?= v8.43.4
RQLITE_ROUNDS  ?= 3
bench-rqlite:
	@set -e; tmp=$$(mktemp -d); trap 'chmod -R u+w $$tmp; rm -rf $$tmp' EXIT; \
	src=$$(cd $$tmp && $(GO) mod download -json github.com/rqlite/rqlite/v8@$(RQLITE_VERSION) | sed -n 's/^\t"Dir": "\(.*\)",$$/\1/p'); \
	cp -r "$$src" $$tmp/src && chmod -R u+w $$tmp/src; \
	echo "building rqlited $(RQLITE_VERSION)"; (cd $$tmp/src && CGO_ENABLED=1 $(GO) build -o $$tmp/rqlited ./cmd/rqlited); \
	cd e2e && $(GO) test -count=1 -timeout 0 -run '^TestSequentialAgainstRqlite$$' -v -rqlite $$tmp/rqlited -rqlite.rounds $(RQLITE_ROUNDS)

## bench-100m: one log grown to BIG_LEAVES leaves through the cluster's state machine (ApplyBatch
## with commands of BIG_BATCH fresh commitments): the rate of each million, then proof, receipt and
## lookup times at the full size, disk per leaf, peak RSS and the time taken (docs/BENCHMARKS.md).
## It needs 250 bytes a leaf and 4 GiB more free in TMPDIR (29 GB at 100 million) and removes the log after.
BIG_LEAVES ?= 100000000
BIG_BATCH  ?= 8192
bench-100m:
	cd cluster && TELENOTARY_GROW_LEAVES=$(BIG_LEAVES) TELENOTARY_GROW_BATCH=$(BIG_BATCH) \
	  $(GO) test -count=1 -timeout 0 -run '^$$' -bench '^BenchmarkGrow$$' -benchtime 1x -v .

## fuzz: run every fuzz target for FUZZTIME each
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

## campaign: the long fault campaign (docs/RELIABILITY.md): DURATION of faults under load
## on 3- and 5-node clusters in turn, reproducible by SEED; writes campaign-report.md, and
## copies the logs and data of a round that failed to campaign-failures/
DURATION ?= 30m
SEED     ?= 1
campaign:
	cd e2e && $(GO) test -count=1 -timeout 0 -run '^TestCampaignLong$$' -v \
	  -campaign.duration $(DURATION) -campaign.seed $(SEED) -campaign.report $(CURDIR)/campaign-report.md \
	  -campaign.keep $(CURDIR)/campaign-failures

## vectors: regenerate notary/testdata/vectors after a deliberate format change
vectors:
	$(GO) test ./notary -run TestVectorsAreCurrent -update

clean:
	rm -rf bin
