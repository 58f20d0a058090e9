//go:build linux

package faulty_test

import (
	"fmt"
	"os"

	"github.com/gomu-rdma/gomu/verbs"
	"github.com/gomu-rdma/gomu/verbs/faulty"
)

// Example wraps an shm device, makes the third WRITE on the QP labelled
// "rep->2" fail with retry exceeded, and watches it happen: the QP goes to
// ERROR, as after a real link failure, and the rule says it fired once.
func Example() {
	fabric := fmt.Sprintf("faulty-example-%d", os.Getpid())
	open := func() verbs.Device {
		d, err := verbs.Open("shm", fabric, verbs.Options{})
		if err != nil {
			panic(err)
		}
		return d
	}
	dev := faulty.Wrap(open()) // the replica under test
	defer dev.Close()
	peer := open()
	defer peer.Close()

	setup := func(d verbs.Device) (verbs.CQ, verbs.MR, verbs.QP) {
		pd, _ := d.AllocPD()
		cq, _ := d.CreateCQ(16)
		mr, _ := pd.AllocMR(4096, verbs.AccessAll)
		qp, _ := pd.CreateQP(verbs.QPConfig{SendCQ: cq})
		return cq, mr, qp
	}
	cq, mr, qp := setup(dev)
	_, peerMR, peerQP := setup(peer)
	qp.Connect(peerQP.Endpoint(), verbs.AccessAll)
	peerQP.Connect(qp.Endpoint(), verbs.AccessAll)

	dev.Label(qp, "rep->2")
	rule := dev.Inject(
		faulty.And(faulty.Kind(faulty.Write), faulty.Label("rep->2"), faulty.OnIndex(2)),
		faulty.Complete(verbs.StatusRetryExceeded))

	out := make([]verbs.Completion, 1)
	for wr := uint64(1); wr <= 3; wr++ {
		if err := qp.PostWrite(wr, mr, 0, 8, peerMR.Remote(), verbs.Signaled); err != nil {
			panic(err)
		}
		for n, _ := cq.Poll(out); n == 0; n, _ = cq.Poll(out) {
		}
		fmt.Printf("write %d: %v\n", out[0].WRID, out[0].Status)
	}
	fmt.Printf("qp %v, rule fired %d time(s)\n", qp.State(), rule.Fired())
	// Output:
	// write 1: success
	// write 2: success
	// write 3: transport retry counter exceeded
	// qp ERROR, rule fired 1 time(s)
}
