package runner

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// configKey identifies what a load of the config read: the file its path
// resolved to and a hash of the bytes read. The zero key is "nothing read".
type configKey struct {
	target string
	sum    [sha256.Size]byte
}

// loadConfigKeyed is LoadConfig that also returns the key of what it read
// (the zero key when the read failed), so the watcher can tell whether the
// file changed since.
func loadConfigKeyed(path string, getenv Env) (*Config, configKey, error) {
	data, err := readRegular(path, maxConfigBytes)
	if err != nil {
		return nil, configKey{}, fmt.Errorf("read config: %w", err)
	}
	// Resolved after the read: a swap in between gives a key of the new
	// target with the old bytes, which the watcher sees as a change, so it
	// reloads once more rather than missing the swap.
	key := configKey{sum: sha256.Sum256(data)}
	key.target, _ = filepath.EvalSymlinks(path)
	cfg, err := ParseConfig(path, data, getenv)
	return cfg, key, err
}

// currentConfigKey reads the key of the config file as it is now.
func currentConfigKey(path string) configKey {
	data, err := readRegular(path, maxConfigBytes)
	if err != nil {
		return configKey{}
	}
	key := configKey{sum: sha256.Sum256(data)}
	key.target, _ = filepath.EvalSymlinks(path)
	return key
}

// maxLinkHops bounds the symlinks followed while resolving the config
// path, as the kernel does (a loop ends there).
const maxLinkHops = 40

// configPaths resolves path one name at a time, as the kernel does, and
// returns every path it looked at (a resolved directory joined with one
// name: the form of the names of fsnotify events in a watched resolved
// directory) and the resolved directories that hold a symlink met on the
// way or the file itself. A change to any of those names can change what
// the config path reads: an edit of the file, a replaced symlink, or a
// swapped directory link (a Kubernetes ConfigMap volume: config.yaml ->
// ..data/config.yaml, where ..data -> ..2026_01_01_… is replaced by
// renaming a new link over it).
func configPaths(path string) (names, dirs map[string]bool) {
	names, dirs = map[string]bool{}, map[string]bool{}
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = filepath.Clean(path)
	}
	dest, todo := splitRoot(abs)
	for hops := 0; len(todo) > 0; {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			dest = filepath.Dir(dest)
			continue
		}
		p := filepath.Join(dest, c)
		names[p] = true
		fi, err := os.Lstat(p)
		if err != nil {
			// Missing (between a remove and a create, say): watch for
			// its creation.
			dirs[dest] = true
			return names, dirs
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			dest = p
			continue
		}
		dirs[dest] = true
		hops++
		target, err := os.Readlink(p)
		if err != nil || hops > maxLinkHops {
			return names, dirs
		}
		var more []string
		if filepath.IsAbs(target) {
			dest, more = splitRoot(filepath.Clean(target))
		} else {
			more = strings.Split(target, string(filepath.Separator))
		}
		todo = append(more, todo...)
	}
	dirs[filepath.Dir(dest)] = true
	return names, dirs
}

// splitRoot splits an absolute path into its root and its names.
func splitRoot(abs string) (root string, names []string) {
	vol := filepath.VolumeName(abs)
	root = vol + string(filepath.Separator)
	rest := strings.TrimPrefix(abs[len(vol):], string(filepath.Separator))
	if rest == "" {
		return root, nil
	}
	return root, strings.Split(rest, string(filepath.Separator))
}

// configWatch follows the config file through its symlinks: which
// directories are watched and which event names matter.
type configWatch struct {
	r       *Runner
	w       *fsnotify.Watcher
	base    string          // the file's own directory, always watched
	watched map[string]bool // directories added to w
	names   map[string]bool // event names that can change the config
}

// refresh recomputes the names and directories from the file system as it
// is now, adding the watches of new directories and removing the others.
func (cw *configWatch) refresh() {
	names, dirs := configPaths(cw.r.opts.ConfigPath)
	cw.names = names
	for d := range dirs {
		if cw.watched[d] {
			continue
		}
		if err := cw.w.Add(d); err != nil {
			cw.r.log.Warn().Err(err).Str("dir", d).Msg("config watch: cannot watch a directory on the config's path; SIGHUP still reloads")
			continue
		}
		cw.watched[d] = true
	}
	for d := range cw.watched {
		if !dirs[d] && d != cw.base {
			_ = cw.w.Remove(d) // gone already when the directory was removed
			delete(cw.watched, d)
		}
	}
}

// changed reports whether the config now reads other bytes, or resolves to
// another file, than the last load read.
func (cw *configWatch) changed() bool {
	loaded, _ := cw.r.loaded.Load().(configKey)
	return currentConfigKey(cw.r.opts.ConfigPath) != loaded
}

// watchFile turns changes of the config file into debounced reload
// requests. It watches the directories of the file and of every symlink on
// its path, and restarts the debounce on an event naming one of those
// paths; when the debounce ends it asks for a reload if the file's bytes or
// the file it resolves to differ from what the last load read, so that an
// event that changed nothing (a touch, a write of the same bytes) reloads
// nothing, and events of other files in the directories never postpone a
// reload. Exit: ctx ends or the watcher closes.
// base is the file's resolved directory, already added to w.
func (r *Runner) watchFile(ctx context.Context, w *fsnotify.Watcher, base string, out chan<- struct{}) {
	cw := &configWatch{r: r, w: w, base: base, watched: map[string]bool{base: true}}
	cw.refresh()
	request := func() {
		select {
		case out <- struct{}{}:
		default: // one is pending already
		}
	}
	// A change between the first load and the first watch.
	if cw.changed() {
		request()
	}
	var timer *time.Timer
	var fire <-chan time.Time
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if !cw.names[filepath.Clean(ev.Name)] {
				continue
			}
			if timer == nil {
				timer = time.NewTimer(r.opts.ReloadDebounce)
			} else {
				timer.Reset(r.opts.ReloadDebounce)
			}
			fire = timer.C
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			r.log.Warn().Err(err).Msg("config watch error")
		case <-fire:
			fire = nil
			cw.refresh()
			if cw.changed() {
				request()
			}
		}
	}
}
