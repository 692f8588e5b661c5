package http

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skyring/skyring"
)

// Timeouts of the server. Bodies are at most a few MiB and commands answer
// within the node's relay timeout, so these only bound misbehaving clients.
// Keep-alive stays on (IdleTimeout bounds idle connections).
const (
	ReadHeaderTimeout = 10 * time.Second
	ReadTimeout       = 30 * time.Second
	WriteTimeout      = 30 * time.Second
	IdleTimeout       = 2 * time.Minute
	MaxHeaderBytes    = 64 << 10
)

// ErrAlreadyStarted is returned by a second [Server.Start].
var ErrAlreadyStarted = errors.New("http: server already started")

// Server serves [NewHandler] on a TCP address. Start it once, Close it once
// or more.
type Server struct {
	opts    Options
	handler http.Handler
	log     *slog.Logger
	addr    atomic.Pointer[net.Addr] // set once by Start; read without mu

	mu       sync.Mutex
	srv      *http.Server
	ln       net.Listener  // set by Listen
	done     chan struct{} // closed when the serve goroutine has exited
	started  bool
	closed   bool
	closeErr error
}

// NewServer returns a Server for the HTTP API in front of svc. It does not
// listen until Start.
func NewServer(svc Service, opts Options) *Server {
	opts = opts.withDefaults()
	return &Server{
		opts:    opts,
		handler: NewHandler(svc, opts),
		log:     opts.Logger.With("component", "http"),
	}
}

// Start listens on Options.Addr and serves in a goroutine the Server owns:
// Listen then Serve. It returns once the listener is open, or with an error
// if it cannot be opened (for example the port is in use). ctx bounds the
// start only: the server runs until Close. Request contexts carry ctx's
// values.
func (s *Server) Start(ctx context.Context) error {
	if err := s.Listen(ctx); err != nil {
		return err
	}
	return s.Serve()
}

// Listen opens the listener on Options.Addr without serving yet: Addr is
// known from then on, and connections wait in the listen backlog until
// Serve. A node uses it to announce its address before it takes requests.
func (s *Server) Listen(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return fmt.Errorf("http: starting server: %w", skyring.ErrClosed)
	case s.ln != nil:
		return ErrAlreadyStarted
	}
	var tlsConf *tls.Config
	if s.opts.TLSCertFile != "" || s.opts.TLSKeyFile != "" {
		cert, err := tls.LoadX509KeyPair(s.opts.TLSCertFile, s.opts.TLSKeyFile)
		if err != nil {
			return fmt.Errorf("http: loading the TLS certificate and key: %w", err)
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.opts.Addr)
	if err != nil {
		return fmt.Errorf("http: listening on %s: %w", s.opts.Addr, err)
	}
	if tlsConf != nil {
		ln = tls.NewListener(ln, tlsConf)
	}
	base := context.WithoutCancel(ctx)
	s.srv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return base },
	}
	a := ln.Addr()
	s.addr.Store(&a)
	s.ln = ln
	return nil
}

// Serve starts serving on the listener Listen opened, in a goroutine the
// Server owns.
func (s *Server) Serve() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return fmt.Errorf("http: starting server: %w", skyring.ErrClosed)
	case s.ln == nil:
		return errors.New("http: Serve before Listen")
	case s.started:
		return ErrAlreadyStarted
	}
	s.done = make(chan struct{})
	s.started = true
	s.log.Info("listening", "addr", s.ln.Addr().String())
	go s.serve(s.srv, s.ln, s.done)
	return nil
}

func (s *Server) serve(srv *http.Server, ln net.Listener, done chan struct{}) {
	defer close(done)
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.log.Error("serving stopped", "error", err)
	}
}

// Addr returns the address the server listens on (useful with ":0"), or
// nil before Start.
func (s *Server) Addr() net.Addr {
	if a := s.addr.Load(); a != nil {
		return *a
	}
	return nil
}

// Close stops taking requests and waits for the in-flight ones to finish,
// as long as ctx allows; when ctx ends first it closes the remaining
// connections and returns ctx's error wrapped. It returns only after the
// serve goroutine has exited. Close is idempotent (later calls return the
// first result) and a Server that never started closes at once.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return s.closeErr
	}
	s.closed = true
	if !s.started {
		if s.ln != nil {
			_ = s.ln.Close() // listened, never served
		}
		return nil
	}
	if err := s.srv.Shutdown(ctx); err != nil {
		// Graceful shutdown ran out of time: drop what is left.
		_ = s.srv.Close()
		s.closeErr = fmt.Errorf("http: graceful shutdown: %w", err)
	}
	<-s.done
	return s.closeErr
}
