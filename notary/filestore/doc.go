// Package filestore is the durable [notary.Store]: a directory of plain files
// whose size grows linearly with the log (about 190 bytes per leaf) and
// whose use of memory does not, but for the Bloom filters of the index's
// runs: 10 bits a leaf, at most 16 MiB a run, about 50-70 MiB at 100
// million leaves (see filter.go).
//
// The directory holds:
//
//	meta         format version and the secret key of the commitment index
//	leaves       the encoded leaves, 74 bytes each, leaf i at offset 74·i
//	hashes       the Merkle tree's stored hashes, 32 bytes each, in the
//	             layout of golang.org/x/mod/sumdb/tlog (StoredHashIndex)
//	head         three checksummed slots with the committed head
//	index-<gen>  the runs of the commitment index, each a table of the
//	             entries of a range of leaves with its Bloom filter
//	             (see index.go and table.go)
//	LOCK         held by the process that has the store open
//
// A commit writes the new leaves and hashes past the end of their files, then
// the head into the next of two alternating slots: the head slot is the
// commit point, and open cuts away whatever lies past it. With
// [Options.Sync], the data and the slot are each synced to the disk before
// the commit returns. Without it, a slot records the machine's boot id; on
// open, a slot from the current boot is trusted (the page cache kept every
// write that preceded it), while one from before a restart has its unsynced
// tail re-hashed from the leaves and is kept only if it reproduces the slot's
// root exactly, else the store returns to the last synced head. Data that
// fails these checks makes Open return [notary.ErrCorrupt] before it writes
// anything.
package filestore
