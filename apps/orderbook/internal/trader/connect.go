package trader

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gomu-rdma/gomu/apps/orderbook/internal/client"
	"github.com/gomu-rdma/gomu/apps/orderbook/internal/wire"
	"github.com/gomu-rdma/gomu/internal/poll"
	"github.com/gomu-rdma/gomu/registry"
	"github.com/gomu-rdma/gomu/verbs"
	"github.com/gomu-rdma/gomu/verbsrpc"
)

// DefaultCluster is the registry namespace orderbook-server uses by
// default; its RPC service lives in "<cluster>-rpc".
const DefaultCluster = "orderbook"

// Endpoint is where the exchange is and how traders talk to it: what
// orderbook-server prints on its "traders:" line, and the client's knobs.
type Endpoint struct {
	Registry  string // the registry's host:port
	Transport string // verbs provider: shm, tcp, ibv
	Device    string // the verbs device (shm: the fabric)
	Cluster   string // the cluster's registry namespace (default "orderbook")
	IDs       []int  // the replicas' ids
	Poll      poll.Mode
	// Attempt bounds one send to one replica (client.Config.Attempt).
	Attempt time.Duration
	// Timeout bounds one request over all its attempts before the
	// client gives up (and the trader resends it).
	Timeout time.Duration
}

// Conn is the device and registry observer every trader of a process
// shares: each trader dials its own client through them.
type Conn struct {
	ep  Endpoint
	dev verbs.Device
	reg *registry.Registry
}

// Connect opens the verbs device and joins the registry as an observer
// of the exchange's RPC namespace.
func Connect(ctx context.Context, ep Endpoint) (*Conn, error) {
	if ep.Cluster == "" {
		ep.Cluster = DefaultCluster
	}
	switch {
	case ep.Registry == "":
		return nil, fmt.Errorf("no registry: set %s or --registry (or use --local)", registry.EnvAddr)
	case len(ep.IDs) == 0:
		return nil, errors.New("no replica ids: set IDS or --ids")
	}
	reg, err := registry.Dial(ctx, registry.Config{Addr: ep.Registry, Cluster: ep.Cluster + "-rpc", ID: 0})
	if err != nil {
		return nil, err
	}
	dev, err := verbs.Open(ep.Transport, ep.Device, verbs.Options{})
	if err != nil {
		reg.Close()
		return nil, err
	}
	return &Conn{ep: ep, dev: dev, reg: reg}, nil
}

// Endpoint is what c was connected with.
func (c *Conn) Endpoint() Endpoint { return c.ep }

// Dial opens one trader's client (a random trader id).
func (c *Conn) Dial(ctx context.Context) (*client.Client, error) {
	return client.Dial(ctx, client.Config{
		RPC:     verbsrpc.Config{Device: c.dev, Registry: c.reg, Poll: c.ep.Poll},
		IDs:     c.ep.IDs,
		Attempt: c.ep.Attempt,
		Timeout: c.ep.Timeout,
	})
}

// Dialer is a Dialer of clients through c.
func (c *Conn) Dialer() Dialer {
	return func(ctx context.Context, _ int) (Session, error) { return c.Dial(ctx) }
}

// Close closes the device and leaves the registry; close the clients
// first.
func (c *Conn) Close() error {
	return errors.Join(c.dev.Close(), c.reg.Close())
}

// Probe waits until the exchange takes orders: a client of its own sends
// one harmless write (a cancel of an order that does not exist, answered
// "rejected") until it is answered, and returns the id of the replica
// that answered it, the leader. It gives up when ctx ends.
func (c *Conn) Probe(ctx context.Context) (leader int, err error) {
	var last error
	for {
		cl, err := c.Dial(ctx)
		if err == nil {
			leader, err = probeWith(cl)
			cl.Close()
			if err == nil {
				return leader, nil
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("the exchange took no order: %w (last: %v)", context.Cause(ctx), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func probeWith(cl *client.Client) (int, error) {
	req := probeRequest()
	res, _, err := cl.Do(&req)
	if err != nil {
		return 0, err
	}
	if res.Status != wire.StatusOK && res.Status != wire.StatusRejected {
		return 0, fmt.Errorf("probe answered %v", res.Status)
	}
	return cl.Leader(), nil
}

// probeRequest cancels order 0, which never exists (the exchange numbers
// orders from 1): it goes through the log like any order entry and
// changes nothing.
func probeRequest() wire.Request { return wire.Request{Op: wire.OpCancel} }
