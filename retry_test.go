package skyring_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring"
)

func retryBody(retry string) []byte {
	return []byte(`{"timeout":1000,"callback":{"transport":"http","method":"post","uri":"http://127.0.0.1/hook","retry":` + retry + `}}`)
}

func TestParseTimerRetry(t *testing.T) {
	t.Parallel()
	ok := map[string]skyring.Retry{
		`null`: {},
		`{}`:   {},
		`{"attempts":5,"min_backoff":1000,"max_backoff":3600000}`: {Attempts: 5, MinBackoff: 1000, MaxBackoff: 3600000},
		`{"attempts":1}`:                           {Attempts: 1},
		`{"attempts":100,"min_backoff":null}`:      {Attempts: 100},
		`{"min_backoff":200}`:                      {MinBackoff: 200},
		`{"max_backoff":2147483647}`:               {MaxBackoff: skyring.MaxBackoffLimit},
		`{"min_backoff":50,"max_backoff":50}`:      {MinBackoff: 50, MaxBackoff: 50},
		`{"attempts":3.0,"other":"ignored"}`:       {Attempts: 3},
		`{"attempts":2,"Attempts":9}`:              {Attempts: 2}, // exact keys
		`{"attempts":4, "attempts":6}`:             {Attempts: 6}, // last wins
		` { "min_backoff" : 10 , "attempts" : 2 }`: {Attempts: 2, MinBackoff: 10},
	}
	for raw, want := range ok {
		tm, err := skyring.ParseTimer(retryBody(raw), params())
		require.NoError(t, err, raw)
		require.Equal(t, want, tm.Callback.Retry, raw)
		require.Zero(t, tm.Attempts, raw)
		require.Zero(t, tm.Next, raw)
	}
	bad := map[string]string{
		`5`:                                      "callback.retry",
		`"x"`:                                    "callback.retry",
		`[]`:                                     "callback.retry",
		`{"attempts":0}`:                         "callback.retry.attempts",
		`{"attempts":101}`:                       "callback.retry.attempts",
		`{"attempts":-1}`:                        "callback.retry.attempts",
		`{"attempts":2.5}`:                       "callback.retry.attempts",
		`{"attempts":"3"}`:                       "callback.retry.attempts",
		`{"attempts":true}`:                      "callback.retry.attempts",
		`{"min_backoff":0}`:                      "callback.retry.min_backoff",
		`{"min_backoff":2147483648}`:             "callback.retry.min_backoff",
		`{"max_backoff":-5}`:                     "callback.retry.max_backoff",
		`{"max_backoff":1e20}`:                   "callback.retry.max_backoff",
		`{"min_backoff":1000,"max_backoff":999}`: "callback.retry.max_backoff",
	}
	for raw, field := range bad {
		_, err := skyring.ParseTimer(retryBody(raw), params())
		requireInvalid(t, err, field, field, raw)
	}
}

// TestRetryJSON: the policy shows in a timer's callback only when set, with
// the field names of the API.
func TestRetryJSON(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(skyring.Callback{Transport: "http", Method: "post", URI: "u"})
	require.NoError(t, err)
	require.JSONEq(t, `{"transport":"http","method":"post","uri":"u"}`, string(b))
	b, err = json.Marshal(skyring.Callback{Transport: "http", Method: "post", URI: "u", Retry: skyring.Retry{Attempts: 3, MinBackoff: 200}})
	require.NoError(t, err)
	require.JSONEq(t, `{"transport":"http","method":"post","uri":"u","retry":{"attempts":3,"min_backoff":200}}`, string(b))
}
