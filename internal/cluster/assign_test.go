package cluster

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestAssignBalancedAndDeterministic(t *testing.T) {
	for runners := 1; runners <= 5; runners++ {
		for accounts := 0; accounts <= 13; accounts++ {
			var rs, as []string
			for i := range runners {
				rs = append(rs, fmt.Sprintf("host-%d:%d", i, 100+i))
			}
			for i := range accounts {
				as = append(as, fmt.Sprintf("bot-%d", i))
			}
			got := Assign(rs, as)
			assert.Len(t, got, accounts)
			counts := map[string]int{}
			for _, r := range got {
				counts[r]++
			}
			lo, hi := accounts, 0
			for _, r := range rs {
				lo, hi = min(lo, counts[r]), max(hi, counts[r])
			}
			assert.LessOrEqual(t, hi-lo, 1, "%d runners, %d accounts: %v", runners, accounts, counts)
			// Any order of the inputs gives the same answer.
			rev := append([]string(nil), rs...)
			for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
				rev[i], rev[j] = rev[j], rev[i]
			}
			assert.Equal(t, got, Assign(rev, as))
		}
	}
	assert.Empty(t, Assign(nil, []string{"a"}))
}

func TestConfigDefaultsAndValidate(t *testing.T) {
	c := Config{Endpoints: []string{"http://127.0.0.1:2379"}, LeaseTTL: 2500e6, Prefix: "qq/"}.WithDefaults()
	assert.Equal(t, "/qq", c.Prefix)
	assert.Equal(t, "3s", c.LeaseTTL.String())
	assert.NotEmpty(t, c.Name)
	assert.NoError(t, c.Validate())
	assert.ErrorContains(t, Config{}.Validate(), "endpoints")
	assert.ErrorContains(t, Config{Endpoints: []string{"x"}, LeaseTTL: 1e9}.Validate(), "lease_ttl")
	assert.ErrorContains(t, Config{Endpoints: []string{"x"}, CertFile: "c"}.Validate(), "key_file")
	assert.ErrorContains(t, Config{Endpoints: []string{"x"}, Name: "a/b"}.Validate(), "name")
}
