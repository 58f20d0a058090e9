package verbs

import (
	"fmt"
	"sort"
	"sync"
)

// OpenFunc opens a device of one provider.
type OpenFunc func(device string, opts Options) (Device, error)

var (
	providersMu sync.RWMutex
	providers   = map[string]OpenFunc{}
)

// Register makes a provider available to Open. Providers call it from init;
// registering a name twice panics, as it is a programming error.
func Register(name string, open OpenFunc) {
	providersMu.Lock()
	defer providersMu.Unlock()
	if _, dup := providers[name]; dup {
		panic("verbs: provider registered twice: " + name)
	}
	providers[name] = open
}

// Providers lists the registered provider names, sorted.
func Providers() []string {
	providersMu.RLock()
	defer providersMu.RUnlock()
	names := make([]string, 0, len(providers))
	for n := range providers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Open opens device of the named provider. The device name is provider
// specific: the shm fabric's name, the tcp soft NIC's listen address, the
// ibv device name ("" picks a default in each case).
func Open(provider, device string, opts Options) (Device, error) {
	providersMu.RLock()
	open, ok := providers[provider]
	providersMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w %q (linked: %v)", ErrUnknownProvider, provider, Providers())
	}
	d, err := open(device, opts.WithDefaults())
	if err != nil {
		return nil, fmt.Errorf("verbs: open %s device %q: %w", provider, device, err)
	}
	return d, nil
}
