//go:build rdma && ibvfake && cgo

package ibv

// int gomu_fake_set_ndevices(int n);
import "C"

// setFakeDevices makes the ibvfake double report only its first n devices
// (0: none) and returns the previous count. Tests only.
func setFakeDevices(n int) int { return int(C.gomu_fake_set_ndevices(C.int(n))) }
