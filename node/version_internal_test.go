package node

import (
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestVersionFrom(t *testing.T) {
	t.Parallel()
	info := func(bi *debug.BuildInfo) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) { return bi, bi != nil }
	}
	vcs := func(rev, modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}
	}
	const rev = "36dc1470a1b2c3d4e5f60718293a4b5c6d7e8f90"
	for _, tc := range []struct {
		name, ldflags string
		bi            *debug.BuildInfo
		want          string
	}{
		{"ldflags win", "v9.9.9", &debug.BuildInfo{Main: debug.Module{Path: modulePath, Version: "v1.0.0"}}, "v9.9.9"},
		{"no build info", "", nil, "devel"},
		{"tagged module", "", &debug.BuildInfo{Main: debug.Module{Path: modulePath, Version: "v1.2.3"}, Settings: vcs(rev, "false")}, "v1.2.3"},
		{"vcs clean", "", &debug.BuildInfo{Main: debug.Module{Path: modulePath, Version: "(devel)"}, Settings: vcs(rev, "false")}, "36dc1470a1b2"},
		{"vcs dirty", "", &debug.BuildInfo{Main: debug.Module{Path: modulePath, Version: "(devel)"}, Settings: vcs(rev, "true")}, "36dc1470a1b2-dirty"},
		{"nothing", "", &debug.BuildInfo{Main: debug.Module{Path: modulePath, Version: "(devel)"}}, "devel"},
		{"a dependency", "", &debug.BuildInfo{Main: debug.Module{Path: "example.com/mine", Version: "(devel)"},
			Deps: []*debug.Module{{Path: "other", Version: "v0.1.0"}, {Path: modulePath, Version: "v1.4.0"}}}, "v1.4.0"},
		{"a replaced dependency", "", &debug.BuildInfo{Main: debug.Module{Path: "example.com/mine", Version: "(devel)"},
			Deps: []*debug.Module{{Path: modulePath, Version: "v1.4.0", Replace: &debug.Module{Path: "../skyring", Version: ""}}}}, "v1.4.0"},
	} {
		require.Equal(t, tc.want, versionFrom(tc.ldflags, info(tc.bi)), tc.name)
	}
}
