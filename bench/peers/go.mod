module github.com/gomu-rdma/gomu/bench/peers

go 1.26.0

require (
	github.com/gomu-rdma/gomu v0.0.0
	github.com/urfave/cli/v2 v2.27.7
	go.etcd.io/raft/v3 v3.6.0
)

require (
	github.com/HdrHistogram/hdrhistogram-go v1.4.0 // indirect
	github.com/cpuguy83/go-md2man/v2 v2.0.7 // indirect
	github.com/gogo/protobuf v1.3.2 // indirect
	github.com/golang/protobuf v1.5.4 // indirect
	github.com/russross/blackfriday/v2 v2.1.0 // indirect
	github.com/xrash/smetrics v0.0.0-20240521201337-686a1a2994c1 // indirect
	google.golang.org/protobuf v1.33.0 // indirect
)

replace github.com/gomu-rdma/gomu => ../..
