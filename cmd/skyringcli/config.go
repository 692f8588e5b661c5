package skyringcli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/urfave/cli/v2"
	"github.com/urfave/cli/v2/altsrc"
	"gopkg.in/yaml.v3"

	"github.com/skyring/skyring/storage"
)

// flagConfig names the optional configuration file of `skyring run`.
const flagConfig = "config"

// ErrConfig is the cause of every error in a --config file (unreadable,
// unknown key, bad value).
var ErrConfig = errors.New("config file")

// ErrDurationUnit: a duration flag was given a number without a unit
// ("10" for "10s"), or something that is not a duration at all.
var ErrDurationUnit = errors.New("use a unit, e.g. 10s, 500ms or 1m30s")

// withConfigFile wraps the run command's flags so that each can also be
// set from a --config file (urfave/cli altsrc). Precedence, highest first:
// the command line, the environment (SKYRING_*), the file, the default.
func withConfigFile(flags []cli.Flag) []cli.Flag {
	out := make([]cli.Flag, 0, len(flags)+1)
	for _, f := range flags {
		switch f := f.(type) {
		case *cli.StringFlag:
			out = append(out, altsrc.NewStringFlag(f))
		case *cli.StringSliceFlag:
			out = append(out, altsrc.NewStringSliceFlag(f))
		case *cli.IntFlag:
			out = append(out, altsrc.NewIntFlag(f))
		case *cli.Int64Flag:
			out = append(out, altsrc.NewInt64Flag(f))
		case *cli.BoolFlag:
			out = append(out, altsrc.NewBoolFlag(f))
		case *cli.DurationFlag:
			out = append(out, altsrc.NewDurationFlag(f))
		case *cli.Float64Flag:
			out = append(out, altsrc.NewFloat64Flag(f))
		default:
			out = append(out, f) // command line and environment only
		}
	}
	return append(out, &cli.StringFlag{Name: flagConfig, EnvVars: env(flagConfig),
		Usage: "YAML (.yaml, .yml) or TOML (.toml) file of flag values, keyed by flag name (storage:path: /var/lib/skyring); the command line and SKYRING_* variables win over it"})
}

// unwrapFlag returns the cli flag an altsrc flag wraps (or f itself).
func unwrapFlag(f cli.Flag) cli.Flag {
	switch f := f.(type) {
	case *altsrc.StringFlag:
		return f.StringFlag
	case *altsrc.StringSliceFlag:
		return f.StringSliceFlag
	case *altsrc.IntFlag:
		return f.IntFlag
	case *altsrc.Int64Flag:
		return f.Int64Flag
	case *altsrc.BoolFlag:
		return f.BoolFlag
	case *altsrc.DurationFlag:
		return f.DurationFlag
	case *altsrc.Float64Flag:
		return f.Float64Flag
	}
	return f
}

// loadConfig applies the --config file, if any, to the flags not given on
// the command line or in the environment. Keys are flag names (without
// the dashes); a key that names no flag is refused, as is a duration
// without a unit. storage:<key> entries that are not flags are added to
// storageExtra (for a custom backend that declares them) unless the command
// line gave the same key.
func loadConfig(c *cli.Context, flags []cli.Flag, storageExtra map[string][]string) error {
	path := c.String(flagConfig)
	if path == "" {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("--%s: %w: %w", flagConfig, ErrConfig, err)
	}
	var (
		raw     map[string]any
		newISC  func(string) (altsrc.InputSourceContext, error)
		decoded error
	)
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml":
		decoded = yaml.Unmarshal(b, &raw)
		newISC = altsrc.NewYamlSourceFromFile
	case ".toml":
		_, decoded = toml.Decode(string(b), &raw)
		newISC = altsrc.NewTomlSourceFromFile
	default:
		return fmt.Errorf("--%s %s: %w: want a .yaml, .yml or .toml file", flagConfig, path, ErrConfig)
	}
	if decoded != nil {
		return fmt.Errorf("--%s %s: %w: %w", flagConfig, path, ErrConfig, decoded)
	}
	byName := map[string]cli.Flag{}
	var names []string
	for _, f := range flags {
		for _, n := range f.Names() {
			byName[n] = unwrapFlag(f)
			names = append(names, n)
		}
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		f, ok := byName[k]
		if k == flagConfig {
			return fmt.Errorf("--%s %s: %w: a config file cannot name another (%s)", flagConfig, path, ErrConfig, k)
		}
		if !ok {
			if sk, isStorage := strings.CutPrefix(k, "storage:"); isStorage {
				if _, given := storageExtra[sk]; !given {
					vals, err := configStrings(raw[k])
					if err != nil {
						return fmt.Errorf("--%s %s: %w: %s: %w", flagConfig, path, ErrConfig, k, err)
					}
					storageExtra[sk] = vals
				}
				continue
			}
			msg := fmt.Sprintf("--%s %s: unknown key %q", flagConfig, path, k)
			if m := storage.Closest(k, names); m != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", m)
			}
			return fmt.Errorf("%s: %w", msg, ErrConfig)
		}
		if _, isDur := f.(*cli.DurationFlag); isDur {
			if err := checkDuration(raw[k]); err != nil {
				return fmt.Errorf("--%s %s: %s: %q: %w", flagConfig, path, k, fmt.Sprint(raw[k]), err)
			}
		}
	}
	isc, err := newISC(path)
	if err != nil {
		return fmt.Errorf("--%s: %w: %w", flagConfig, ErrConfig, err)
	}
	if err := altsrc.ApplyInputSourceValues(c, isc, flags); err != nil {
		return fmt.Errorf("--%s %s: %w: %w", flagConfig, path, ErrConfig, err)
	}
	return nil
}

// configStrings turns a config value (a scalar or a list of scalars) into
// option strings.
func configStrings(v any) ([]string, error) {
	switch v := v.(type) {
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			s, err := configStrings(e)
			if err != nil {
				return nil, err
			}
			out = append(out, s...)
		}
		return out, nil
	case map[string]any, map[any]any:
		return nil, errors.New("want a value or a list of values, not a table")
	}
	return []string{fmt.Sprint(v)}, nil
}

// checkDuration accepts a Go duration string ("10s", "1m30s", "0") or the
// number 0.
func checkDuration(v any) error {
	switch v := v.(type) {
	case string:
		return parseDuration(v)
	case int:
		if v == 0 { // 0 needs no unit
			return nil
		}
	case int64:
		if v == 0 {
			return nil
		}
	}
	return ErrDurationUnit
}

// parseDuration is time.ParseDuration with a useful error: "10" (no unit)
// and "ten" both fail with ErrDurationUnit.
func parseDuration(s string) error {
	if _, err := time.ParseDuration(s); err != nil {
		return ErrDurationUnit
	}
	return nil
}

// checkDurationArgs checks the values the command line and the environment
// give the duration flags among flags, before urfave/cli parses them (whose
// error for "--delivery:timeout 10" is only "parse error").
func checkDurationArgs(flags []cli.Flag, args []string, lookupEnv func(string) (string, bool)) error {
	durs := map[string]bool{}
	for _, f := range flags {
		d, ok := unwrapFlag(f).(*cli.DurationFlag)
		if !ok {
			continue
		}
		for _, n := range d.Names() {
			durs[n] = true
		}
		for _, e := range d.EnvVars {
			if v, set := lookupEnv(e); set && v != "" {
				if err := parseDuration(v); err != nil {
					return fmt.Errorf("%s=%s (--%s): %w", e, strconv.Quote(v), d.Name, err)
				}
			}
		}
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		name, ok := strings.CutPrefix(a, "--")
		if !ok {
			if name, ok = strings.CutPrefix(a, "-"); !ok {
				continue
			}
		}
		name, val, hasVal := strings.Cut(name, "=")
		if !durs[name] {
			continue
		}
		if !hasVal {
			if i+1 >= len(args) {
				continue // urfave/cli says the value is missing
			}
			i++
			val = args[i]
		}
		if err := parseDuration(val); err != nil {
			return fmt.Errorf("--%s %s: %w", name, strconv.Quote(val), err)
		}
	}
	return nil
}
