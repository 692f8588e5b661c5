package transports_test

import (
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring/transports"
	"github.com/skyring/skyring/transports/transportstest"
)

func recorderFactory(name string) transports.Factory {
	return func(transports.Deps) (transports.Transport, error) { return transportstest.NewRecorder(name), nil }
}

func TestCatalogAddNames(t *testing.T) {
	t.Parallel()
	c := transports.NewCatalog()
	require.NoError(t, c.Add("nats", recorderFactory("nats")))
	require.NoError(t, c.Add("http", recorderFactory("http")))
	require.Equal(t, []string{"http", "nats"}, c.Names())

	require.ErrorIs(t, c.Add("http", recorderFactory("http")), transports.ErrDuplicateTransport)
	require.Error(t, c.Add("", recorderFactory("x")))
	require.Error(t, c.Add("x", nil))
	require.Equal(t, []string{"http", "nats"}, c.Names())
}

func TestCatalogBuild(t *testing.T) {
	t.Parallel()
	c := transports.NewCatalog()
	var got transports.Deps
	require.NoError(t, c.Add("http", func(d transports.Deps) (transports.Transport, error) {
		got = d
		return transportstest.NewRecorder("http"), nil
	}))
	require.NoError(t, c.Add("nats", recorderFactory("nats")))
	require.NoError(t, c.Add("unused", recorderFactory("unused")))

	r, err := c.Build([]string{"nats", "http", "http"}, transports.Deps{Timeout: 3 * time.Second, Version: "1.2.3"})
	require.NoError(t, err)
	require.Equal(t, []string{"http", "nats"}, r.Names())
	require.Equal(t, 3*time.Second, got.Timeout)
	require.Equal(t, "1.2.3", got.Version)
	require.NotNil(t, got.Logger, "Build never passes a nil logger")
	require.Nil(t, got.NATS)

	logger := slog.Default()
	_, err = c.Build([]string{"http"}, transports.Deps{Logger: logger})
	require.NoError(t, err)
	require.Same(t, logger, got.Logger)

	empty, err := c.Build(nil, transports.Deps{})
	require.NoError(t, err)
	require.Empty(t, empty.Names())
}

func TestCatalogBuildUnknown(t *testing.T) {
	t.Parallel()
	c := transports.NewCatalog()
	built := 0
	require.NoError(t, c.Add("http", func(transports.Deps) (transports.Transport, error) {
		built++
		return transportstest.NewRecorder("http"), nil
	}))
	require.NoError(t, c.Add("nats", recorderFactory("nats")))
	_, err := c.Build([]string{"http", "smtp"}, transports.Deps{})
	require.ErrorIs(t, err, transports.ErrUnknownTransportName)
	require.EqualError(t, err, `transports: unknown transport name "smtp"; known: http, nats`)
	require.Zero(t, built, "nothing is built when a name is unknown")
}

func TestCatalogBuildFailureShutsDownBuilt(t *testing.T) {
	t.Parallel()
	c := transports.NewCatalog()
	first := transportstest.NewRecorder("a")
	require.NoError(t, c.Add("a", func(transports.Deps) (transports.Transport, error) { return first, nil }))
	boom := errors.New("no connection")
	require.NoError(t, c.Add("b", func(transports.Deps) (transports.Transport, error) { return nil, boom }))
	_, err := c.Build([]string{"a", "b"}, transports.Deps{})
	require.ErrorIs(t, err, boom)
	require.ErrorContains(t, err, `building "b"`)
	require.Equal(t, 1, first.Shutdowns())
}

func TestCatalogBuildNameMismatch(t *testing.T) {
	t.Parallel()
	c := transports.NewCatalog()
	wrong := transportstest.NewRecorder("other")
	require.NoError(t, c.Add("mine", func(transports.Deps) (transports.Transport, error) { return wrong, nil }))
	require.NoError(t, c.Add("nil", func(transports.Deps) (transports.Transport, error) { return nil, nil }))
	_, err := c.Build([]string{"mine"}, transports.Deps{})
	require.ErrorContains(t, err, `factory built a transport named "other"`)
	require.Equal(t, 1, wrong.Shutdowns())
	_, err = c.Build([]string{"nil"}, transports.Deps{})
	require.ErrorContains(t, err, "no transport")
}

func TestCatalogConcurrent(t *testing.T) {
	t.Parallel()
	c := transports.NewCatalog()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 200 {
			_ = c.Names()
			_, _ = c.Build([]string{"base"}, transports.Deps{})
		}
	}()
	require.NoError(t, c.Add("base", recorderFactory("base")))
	for i := range 50 {
		require.NoError(t, c.Add(string(rune('a'+i%26))+string(rune('a'+i/26)), recorderFactory("x")))
	}
	<-done
	require.Len(t, c.Names(), 51)
}
