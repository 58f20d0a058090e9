package consensus

// Control MR layout (background plane). Every replica has one, laid out the
// same way, made of 64-byte slots; each value is one 8-byte word written
// with a single 8-byte store or WRITE, so it is always read whole.
//
//	slot 0           heartbeat counter, leader claim, applied index, lagging
//	                 mask, behind flag, active mask (words at +0, +8, +16,
//	                 +24, +32, +40, read together by peers every period)
//	slot 1+p         PermRequest[p]: candidate p's latest request number
//	slot 17+p        PermGrant[p]: the grant word granter p gave us
//	slot 33          our own current request word (the source of our
//	                 request WRITEs)
//	slot 49+p        the grant word we gave candidate p (the source of our
//	                 grant WRITEs)
//
// p ranges over 1..15, so slots 1, 17 and 49 are free. The words of slot 0
// live together so a peer learns all of them with one READ: the heartbeat
// says the owner runs, the claim (the owner's proposal number while it
// leads, 0 otherwise) says who leads, the applied index lets the leader
// reuse ring space a majority has applied, the lagging mask (bit p: the
// owner, leading, left follower p out because it fell behind the ring) tells
// a follower it must catch up by state transfer, the behind flag (nonzero
// while the owner is catching up) keeps it out of elections, and the active
// mask (bit p: the owner, leading, counts follower p active) tells a
// follower that catches up when it is done.
//
// After the reconnection slots come the state-transfer slots (see
// catchup.go): requests peers sent us, offers producers sent us, and the
// sources of our own request and offer WRITEs; then the read-index slots
// (see read.go): the latest read-index request word each peer sent us, and
// the source of our own.
const (
	ctlSlot       = 64
	ctlHeartbeat  = 0
	ctlClaim      = 8
	ctlApplied    = 16
	ctlLagging    = 24
	ctlBehind     = 32
	ctlActive     = 40
	ctlStatusSize = 48
	ctlOwnRequest = 33 * ctlSlot
	ctlEpIn       = 65 * ctlSlot // 16 × 256 bytes: endpoints peers send us
	ctlEpOut      = ctlEpIn + 16*ctlEpSlot
	ctlEpSlot     = 256                     // seq word, length word, endpoint bytes
	ctlSnapReq    = ctlEpOut + 16*ctlEpSlot // 16 slots: snapshot requests peers sent us
	ctlSnapOffer  = ctlSnapReq + 16*ctlSlot // 16 slots: snapshot offers producers sent us
	ctlSnapReqOut = ctlSnapOffer + 16*ctlSlot
	ctlSnapOfOut  = ctlSnapReqOut + 16*ctlSlot
	ctlReadReq    = ctlSnapOfOut + 16*ctlSlot // 16 slots: read-index requests peers sent us
	ctlReadOut    = ctlReadReq + 16*ctlSlot   // the source of our read-index request WRITEs
	ctlSize       = ctlReadOut + ctlSlot
)

func ctlReadReqOff(p int) int { return ctlReadReq + p*ctlSlot }

// Reconnection slots: a replication QP that went to the error state (a
// refused WRITE of a deposed leader) is only usable again after both ends
// Reset it and Connect to each other's new endpoints. The side that needs
// it resets its QP and writes the new endpoint into the peer's EpIn slot,
// then the sequence word (seq<<1); the peer resets its end, connects and
// answers the same way with the reply bit set ((seq<<1)|1).
func ctlEpInOff(p int) int  { return ctlEpIn + p*ctlEpSlot }
func ctlEpOutOff(p int) int { return ctlEpOut + p*ctlEpSlot }

// A request word is the candidate's request number, with reqWithdrawn set
// once the candidate gave the request up before using any grant (it fenced
// nothing, read and wrote nothing): a granter may then give write access
// back to the live leader it fenced out for that candidate.
//
// A grant word is the request number granted in its low 32 bits and the
// granter's grant counter above, so two grants of the same request differ:
// a leader whose WRITEs a follower refused takes the follower back only on
// a grant newer than the one it had, whatever order the refusal and the
// new grant reach it in.
const reqWithdrawn = 1 << 63

func grantWord(req, gen uint64) uint64 { return gen<<32 | req&(1<<32-1) }
func grantReq(w uint64) uint64         { return w & (1<<32 - 1) }

func ctlRequestOff(p int) int { return (1 + p) * ctlSlot }
func ctlGrantOff(p int) int   { return (17 + p) * ctlSlot }
func ctlGivenOff(p int) int   { return (49 + p) * ctlSlot }

// Work request ids: the kind in the top byte, the peer in the next and an
// index (or sequence number) in the low 48 bits.
const (
	wrEntry   = 1 // an entry (or a catch-up copy of the ring) to a follower
	wrCommit  = 2 // the idle leader's commit-index write to a header
	wrRecover = 3 // prepare: header and ring reads, proposal and ring writes
	wrStatus  = 4 // background: a peer's status words
	wrControl = 5 // background: request, grant and reconnection writes
	wrConfirm = 6 // a read barrier's round: the commit index to a header
	wrSnap    = 7 // catch-up: a chunk of a producer's snapshot
	wrReadReq = 8 // a follower's read-index request to the leader (background plane)
	wrReadAns = 9 // the leader's read-index answer to a follower's header
)

func makeWRID(kind, peer int, idx uint64) uint64 {
	return uint64(kind)<<56 | uint64(peer)<<48 | idx&(1<<48-1)
}

func splitWRID(id uint64) (kind, peer int, idx uint64) {
	return int(id >> 56), int(id >> 48 & 0xff), id & (1<<48 - 1)
}
