package client_test

import (
	"context"
	"testing"
	"time"

	"github.com/skyring/skyring/client"
)

// BenchmarkClient measures one request round trip per API against a real
// in-process node (loopback HTTP, embedded NATS, memory storage).
func BenchmarkClient(b *testing.B) {
	bb := setup(b)
	ctx := context.Background()
	for _, nc := range bb.clients(b) {
		c := nc.c
		b.Run(nc.name+"/Create", func(b *testing.B) {
			b.ReportAllocs()
			s := client.TimerSpec{Timeout: time.Hour, Data: map[string]any{"order": 42}, Callback: recCallback}
			for b.Loop() {
				if _, err := c.Create(ctx, s); err != nil {
					b.Fatal(err)
				}
			}
		})
		id, err := c.Create(ctx, client.TimerSpec{Timeout: time.Hour, Data: "x", Callback: recCallback})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(nc.name+"/Get", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Get(ctx, id); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(nc.name+"/CreateCancel", func(b *testing.B) {
			b.ReportAllocs()
			s := client.TimerSpec{Timeout: time.Hour, Callback: recCallback}
			for b.Loop() {
				id, err := c.Create(ctx, s)
				if err != nil {
					b.Fatal(err)
				}
				if err := c.Cancel(ctx, id); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
