package store

import "github.com/gomu-rdma/gomu/internal/resp"

// PUBLISH is replicated like a write, so that every replica delivers each
// message to its own subscribers, in log order, and subscribers on any
// replica hear the same messages in the same order. It changes nothing in
// the keyspace (Env.Publish does the delivering); its reply is the number
// of subscribers on the replica that answers the client, the leader.
func init() {
	register(&Command{Name: "publish", Arity: 3, Flags: Write | Fast, Group: "pubsub",
		Summary: "Posts a message to a channel.", run: cmdPublish})
}

func cmdPublish(_ *Store, e *Env, dst []byte, args [][]byte) []byte {
	n := 0
	if e.Publish != nil {
		n = e.Publish(args[1], args[2])
	}
	return resp.AppendInt(dst, int64(n))
}
