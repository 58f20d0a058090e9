package verbs_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/gomu-rdma/gomu/verbs"
)

func TestOpenUnknownProvider(t *testing.T) {
	_, err := verbs.Open("carrier-pigeon", "", verbs.Options{})
	if !errors.Is(err, verbs.ErrUnknownProvider) || !strings.Contains(err.Error(), "carrier-pigeon") {
		t.Fatalf("Open of an unknown provider: %v", err)
	}
}

func TestStrings(t *testing.T) {
	tests := []struct{ got, want string }{
		{verbs.AccessAll.String(), "local-write|remote-write|remote-read"},
		{verbs.Access(0).String(), "none"},
		{(verbs.AccessRemoteRead | 1<<7).String(), "remote-read|0x80"},
		{verbs.StatusRetryExceeded.String(), "transport retry counter exceeded"},
		{verbs.Status(200).String(), "Status(200)"},
		{verbs.StateRTS.String(), "RTS"},
		{verbs.OpRead.String(), "READ"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestCompletionErr(t *testing.T) {
	ok := verbs.Completion{Status: verbs.StatusSuccess}
	if ok.Err() != nil {
		t.Fatal("success has an error")
	}
	bad := verbs.Completion{WRID: 9, QPNum: 3, Status: verbs.StatusRemoteAccessError, Op: verbs.OpWrite}
	var ce *verbs.CompletionError
	if err := bad.Err(); !errors.As(err, &ce) || !strings.Contains(err.Error(), "wr 9 on qp 3: remote access error") {
		t.Fatalf("failed completion error: %v", err)
	}
}

func TestRemoteAdd(t *testing.T) {
	r := verbs.Remote{Addr: 0x1000, RKey: 7}.Add(0x10)
	if r.Addr != 0x1010 || r.RKey != 7 {
		t.Fatalf("Add: %+v", r)
	}
}
