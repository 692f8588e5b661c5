package skyring_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring"
)

func TestParseListQuery(t *testing.T) {
	t.Parallel()
	q, err := skyring.ParseListQuery("", "", "")
	require.NoError(t, err)
	require.Equal(t, skyring.ListQuery{Limit: skyring.DefaultListLimit}, q)

	q, err = skyring.ParseListQuery("failed", "5", skyring.EncodeCursor("a/b c"))
	require.NoError(t, err)
	require.Equal(t, skyring.ListQuery{State: "failed", After: "a/b c", Limit: 5}, q)

	for _, bad := range [][3]string{
		{"dead", "", ""}, {"FAILED", "", ""},
		{"", "0", ""}, {"", "1001", ""}, {"", "x", ""}, {"", "-1", ""},
		{"", "", "!!"}, {"", "", skyring.EncodeCursor(strings.Repeat("x", skyring.MaxIDLen+1))},
	} {
		_, err := skyring.ParseListQuery(bad[0], bad[1], bad[2])
		var ve *skyring.ValidationError
		require.ErrorAs(t, err, &ve, "%q", bad)
		require.NotEmpty(t, ve.Reason)
	}
	require.Equal(t, "", skyring.EncodeCursor(""))
	after, err := skyring.DecodeCursor(skyring.EncodeCursor("\xff~"))
	require.NoError(t, err)
	require.Equal(t, "\xff~", after)
}
