package registry

import (
	"fmt"
	"strconv"
)

// maxKeyLen is memcached's key limit.
const maxKeyLen = 250

const maxClusterLen = 64

func validCluster(c string) error {
	if c == "" || len(c) > maxClusterLen {
		return fmt.Errorf("registry: cluster name %q: want 1 to %d bytes", c, maxClusterLen)
	}
	for i := 0; i < len(c); i++ {
		switch b := c[i]; {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9', b == '.', b == '_', b == '-':
		default:
			return fmt.Errorf("registry: cluster name %q: byte %d is %q; use [A-Za-z0-9._-]", c, i, b)
		}
	}
	return nil
}

// validKey checks key against memcached's rules before it is sent.
func validKey(key string) error {
	if len(key) > maxKeyLen {
		return fmt.Errorf("registry: %w %.60q...: %d bytes, memcached allows %d", ErrInvalidKey, key, len(key), maxKeyLen)
	}
	for i := 0; i < len(key); i++ {
		if b := key[i]; b <= ' ' || b == 0x7f {
			return fmt.Errorf("registry: %w %q: byte %d is %q; keys cannot hold spaces or control characters", ErrInvalidKey, key, i, b)
		}
	}
	return nil
}

// validName checks a publish or barrier name and the key it makes.
func validName(name, key string) error {
	if name == "" {
		return fmt.Errorf("registry: %w: empty name", ErrInvalidKey)
	}
	return validKey(key)
}

func (r *Registry) prefix() string { return "gomu/" + r.cfg.Cluster + "/" }

func (r *Registry) announceKey(id int) string {
	return r.prefix() + "announce/" + strconv.Itoa(id)
}

func (r *Registry) publishKey(p Peer, name string) string {
	return fmt.Sprintf("%spub/%d/%016x/%s", r.prefix(), p.ID, p.Incarnation, name)
}

func (r *Registry) barrierKey(name string, id int) string {
	return r.prefix() + "barrier/" + name + "/" + strconv.Itoa(id)
}
