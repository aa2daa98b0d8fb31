package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// version is set at build time with -ldflags "-X main.version=…". Left at
// "dev", the main module's version is reported instead when Go knows one:
// v1.2.3 for `go install …@v1.2.3`, a pseudo-version for a build in a git
// clone.
var version = "dev"

// commit may be set at build time with -ldflags "-X main.commit=…" where Go
// cannot stamp the revision itself (a build with -buildvcs=false, or from
// a git worktree, which Go does not recognise as a checkout).
var commit = ""

func versionString() string {
	info, _ := debug.ReadBuildInfo()
	return formatVersion(version, commit, info, runtime.Version())
}

// formatVersion is the `qqgate version` line:
//
//	qqgate dev (commit 0123abcd…, modified, committed 2026-01-01T00:00:00Z, go1.26.8)
//
// The commit, its time and whether the tree had uncommitted changes come
// from the VCS stamp Go embeds when it builds from a git checkout
// (vcs.revision, vcs.time, vcs.modified); "commit unknown" when the binary
// has no stamp and no -X main.commit.
func formatVersion(ver, commit string, info *debug.BuildInfo, goVersion string) string {
	var rev, at string
	modified := false
	if info != nil {
		if ver == "dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			ver = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				at = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if rev == "" {
		rev = commit
	}
	parts := []string{"commit unknown"}
	if rev != "" {
		parts[0] = "commit " + rev
		if modified {
			parts = append(parts, "modified")
		}
		if at != "" {
			parts = append(parts, "committed "+at)
		}
	}
	parts = append(parts, goVersion)
	return fmt.Sprintf("qqgate %s (%s)", ver, strings.Join(parts, ", "))
}
