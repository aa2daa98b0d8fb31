package cluster

import (
	"hash/fnv"
	"slices"
)

// Assign spreads accounts over runners, deterministically: every runner
// computes the same answer from the same two sets. Counts differ by at
// most one (the first len(accounts)%len(runners) runners, by name, take
// one more), and each account goes to the runner with the highest
// rendezvous score that still has room, so a change of membership moves
// few accounts. It returns the owner of each account; with no runner, an
// empty map.
func Assign(runners, accounts []string) map[string]string {
	out := make(map[string]string, len(accounts))
	if len(runners) == 0 {
		return out
	}
	rs := slices.Clone(runners)
	slices.Sort(rs)
	rs = slices.Compact(rs)
	as := slices.Clone(accounts)
	slices.Sort(as)
	as = slices.Compact(as)
	n := len(rs)
	room := make(map[string]int, n)
	for i, r := range rs {
		room[r] = len(as) / n
		if i < len(as)%n {
			room[r]++
		}
	}
	ranked := make([]string, n)
	for _, a := range as {
		copy(ranked, rs)
		slices.SortFunc(ranked, func(x, y string) int {
			sx, sy := score(a, x), score(a, y)
			switch {
			case sx > sy:
				return -1
			case sx < sy:
				return 1
			}
			return 0
		})
		for _, r := range ranked {
			if room[r] > 0 {
				room[r]--
				out[a] = r
				break
			}
		}
	}
	return out
}

// score is the rendezvous weight of runner r for account a.
func score(a, r string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(a))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(r))
	return h.Sum64()
}
