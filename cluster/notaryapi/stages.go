package notaryapi

// WriteStageMetric is the histogram, labelled by stage, in which a node
// times each stage of the write path it takes part in (the leader: all of
// them), on its GET /metrics.
const WriteStageMetric = "telenotary_write_stage_seconds"

// WriteStage is one stage of the write path.
type WriteStage struct {
	// Name is the metric's stage label.
	Name string
	// PerBatch is true for a stage timed once per raft entry the leader's
	// batcher proposes, which the requests in it share; false for one
	// timed once per request.
	PerBatch bool
	// What says what the stage covers.
	What string
}

// WriteStages are the write path's stages, in the order a request meets
// them (`telenotary bench notarize --trace` prints them so).
var WriteStages = []WriteStage{
	{"read", false, "the handler reads and decodes the request"},
	{"queue", false, "the submission waits for the batch that takes it to be proposed"},
	{"append", true, "raft writes the entry to the leader's log, fsync included (part of commit)"},
	{"commit", true, "from proposing the entry to the leader's state machine taking it: the leader's append, a follower's, the commit"},
	{"apply", true, "the state machine appends the leaves and signs the checkpoint"},
	{"sign", true, "signing the checkpoint (part of apply)"},
	{"cosign", false, "from the state machine's end to the other nodes' signatures gathered (only when more than one is asked)"},
	{"answer", false, "from the state machine's end, or the signatures, to the request having its result"},
	{"proof", false, "the receipts are proven into the checkpoint and checked"},
	{"write", false, "the answer is encoded and written"},
	{"total", false, "from the request's arrival to its answer written"},
}
