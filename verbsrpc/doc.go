// Package verbsrpc is a microsecond request/response RPC between a client
// process and a server process over one-sided RDMA WRITEs, after eRPC, HERD
// and FaRM. It runs on any verbs provider (shm, tcp, ibv, or a faulty
// wrapper of one): neither side ever takes a receive or an interrupt; each
// WRITEs its message straight into the other's ring and the other polls
// its own memory. The orderbook's traders reach the replicated matching
// engine this way.
//
//	srv, err := verbsrpc.Listen(ctx, verbsrpc.Config{Device: dev, Registry: reg, Name: "orderbook"},
//		func(batch []*verbsrpc.Request) {
//			for _, r := range batch {
//				r.Reply(handle(r.Payload()))
//			}
//		})
//	conn, err := verbsrpc.DialID(ctx, verbsrpc.Config{Device: dev, Registry: observer, Name: "orderbook"}, 1)
//	n, err := conn.Call(ctx, req, resp)
//
// # Handshake
//
// The server publishes "rpc/<Name>" (its Slots and MaxMsg) in the registry
// and reads handshakes from its registry inbox of the same name, so
// clients may be registry observers. A client looks the service up (the
// replica id's current incarnation, or an exact one), builds its side and
// asks the inbox with a hello: version, Slots K, MaxMsg, its response
// ring's Remote and its QP endpoint. The server refuses, in words, a K or
// MaxMsg above its own; otherwise it builds the connection, connects its
// QP and answers with the connection id, the Remotes of its request ring
// and control area, and its QP endpoint; the client connects on the
// answer. Each connection has its own PD, CQ and RC QP on both sides; the
// QPs grant the peer remote WRITE only, and only the rings and the control
// area are remotely writable memory (staging is in separate local MRs).
//
// # Rings
//
// Each ring has K slots of S = roundup8(MaxMsg) + 24 bytes. A message of n
// bytes sits at the end of its slot, right before a 24-byte trailer, so
// one WRITE carries payload and trailer:
//
//	slot i:  [ unused | payload (n bytes) | len u32 | crc u32 | id u64 | seq u64 ]
//	                                        ^ S-24                        ^ S-8, 8-aligned
//
// crc is the CRC-32C of payload, len, id and seq; id is the request's
// number on the connection (0, 1, 2, ...; a response carries its
// request's); seq is the message's number in its ring plus one. The
// client's request n goes to request slot n mod K with seq n+1; the
// server's r-th response on the connection goes to response slot r mod K
// with seq r+1, whichever request it answers (replies may be out of
// order). A reader polls the seq word of its next slot with an atomic
// 8-byte load until it holds the seq it expects, then checks len and crc.
// WRITEs larger than 8 bytes are not atomic to a poller (verbs contract,
// item 6): the seq word may land before the rest, so a mismatch means the
// message is still landing and the reader polls again; a torn message is
// never acted on. The crc covers seq, not only payload, len and id: while
// only the new seq word has landed, the rest of the slot still holds the
// previous lap's message, complete and self-consistent, and a crc without
// seq would accept it. Rings are never zeroed: an old lap's seq is never
// the one expected. The server's control area is one cache line whose
// first word the client writes: a heartbeat counter, with the top bit set
// by Close.
//
// # Flow control
//
// There are no credit messages. A client keeps at most K requests
// outstanding (sent and not yet answered, including those whose Call timed
// out: their late answers are recognised by id and dropped), and both
// sides consume their rings in order. That alone keeps every write off
// unconsumed slots:
//
//   - Responses. When the server writes response r it has answered r+1
//     distinct requests (responses 0..r), all of which it had consumed, so
//     it had consumed some request q ≥ r. When the client sent q it had at
//     most K-1 others outstanding, so it had consumed at least q+1-K ≥
//     r+1-K responses, in order: responses 0..r-K, including r-K, the last
//     user of slot r mod K.
//   - Requests. When the client sends request n it has at most K-1 others
//     outstanding, so it has consumed at least n+1-K responses, each
//     answering a distinct request the server had consumed; the server
//     consumes in order, so it has consumed requests 0..n-K, including
//     n-K, the last user of slot n mod K.
//
// When K requests are outstanding, Call waits (back-pressure) until one is
// answered, or fails at its deadline with ErrBackPressure. The server
// takes a request out of its ring (payload copied into a Request, slot
// consumed) only when the connection has one of its K Requests free; a
// Request returns on Reply. So a client that breaks the rule finds its
// extra requests left in the ring, and nothing on the hot path allocates.
//
// # Writes and completions
//
// A message whose payload and trailer fit verbs.DefaultMaxInline goes
// inline. Every non-inline write is signaled, and its staging slot is
// reused only after its completion; otherwise every min(K/2, 32)-th write
// is signaled and completions are reaped after each post, so unsignaled
// writes never fill the send queue (whose depth leaves room for two
// signaling periods beyond K). Any error completion (retry exceeded,
// flush, remote access) breaks the connection: Call returns ErrPeerDead
// wrapping the verbs error, then and on every later Call; the server drops
// the connection and logs why.
//
// # Deadlines, liveness and failures
//
// Call takes its deadline from ctx once and reads the clock, reaps
// completions and checks ctx only every few thousand polls in Spin mode
// (fewer in the others); without a deadline it waits until the answer, a
// failure, or ctx's cancellation. A client whose server died fails its
// Call at the deadline, or earlier with ErrPeerDead once a write fails: an
// idle or waiting client writes a heartbeat into the server's control
// area every HeartbeatInterval (100 ms), and against a dead server that
// write fails. The server's poll goroutine checks the control words every
// few dozen sweeps: a close mark frees the connection at once, and a
// connection with neither requests nor heartbeats for ClientTimeout (3 s)
// is dropped. Requests of a dropped connection that a handler still holds
// get an error from Reply.
//
// # Goroutines
//
// A Server runs an acceptor (the inbox loop) and one poll goroutine, which
// sweeps every connection's next request slot and calls the Handler with
// everything ready; with nothing ready it waits as Config.Poll says, and
// locks its OS thread in Spin mode only. The acceptor adds connections
// without disturbing the sweep: the list is copy-on-write behind an
// atomic pointer, and only the poll goroutine removes connections and
// frees their memory, so it never reads a ring that is gone. A Conn runs a
// heartbeat goroutine; its Call runs on the caller's goroutine.
//
// Byte order is little-endian on the wire and the seq word is compared as
// a native integer: hosts are little-endian (amd64, arm64).
package verbsrpc
