package node

import (
	"runtime/debug"
)

// modulePath is this module's path, looked up in the build info.
const modulePath = "github.com/skyring/skyring"

// version is set at link time, and then wins over the build info:
//
//	go build -ldflags "-X github.com/skyring/skyring/node.version=v1.2.3" ./cmd/skyring
var version string

// Version is the Skyring version: `skyring version`, `skyring --version`
// and the User-Agent skyring/<Version> of http deliveries. It is the
// -ldflags value above if set; else the module version from the build
// info (a tagged release, or Go's pseudo-version); else the VCS revision
// the binary was built from (12 hex digits, "-dirty" with uncommitted
// changes); else "devel".
var Version = versionFrom(version, debug.ReadBuildInfo)

// versionFrom is Version's rule, with the build info injected for tests.
func versionFrom(ldflags string, read func() (*debug.BuildInfo, bool)) string {
	if ldflags != "" {
		return ldflags
	}
	info, ok := read()
	if !ok || info == nil {
		return develVersion
	}
	mod := &info.Main
	if mod.Path != modulePath {
		// Embedded in another program: this module is a dependency.
		for _, d := range info.Deps {
			if d.Path == modulePath {
				mod = d
				if d.Replace != nil && d.Replace.Version != "" {
					mod = d.Replace
				}
				break
			}
		}
	}
	if v := mod.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev string
	dirty := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return develVersion
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return rev
}

// develVersion is the version of a build without version information
// (go run, -buildvcs=false, no -ldflags).
const develVersion = "devel"
