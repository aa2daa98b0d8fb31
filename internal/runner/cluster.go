package runner

import (
	"github.com/qqgate/qqgate/internal/ops"
)

// accountIDs lists cfg's account ids in file order.
func accountIDs(cfg *Config) []string {
	ids := make([]string, 0, len(cfg.Accounts))
	for _, a := range cfg.Accounts {
		ids = append(ids, a.ID)
	}
	return ids
}

// clusterStart runs an account the cluster gave this runner.
func (r *Runner) clusterStart(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.runCtx == nil || r.runCtx.Err() != nil {
		return
	}
	if a := r.accounts[id]; a != nil {
		select {
		case <-a.done:
		default:
			return // already running
		}
	}
	for _, a := range r.cfg.Accounts {
		if a.ID == id {
			r.startLocked(r.runCtx, r.runWG, a)
			return
		}
	}
}

// clusterStop stops an account gracefully (the handler finishes, the
// record is written, the connection closes with 4000) and waits for it,
// before the cluster releases it to another runner.
func (r *Runner) clusterStop(id string) {
	r.mu.Lock()
	a := r.accounts[id]
	r.mu.Unlock()
	if a == nil {
		return
	}
	a.cancel()
	<-a.done
	r.mu.Lock()
	if r.accounts[id] == a {
		delete(r.accounts, id)
	}
	r.mu.Unlock()
}

// clusterHealth is the runner's standing in its cluster, for /healthz.
func (r *Runner) clusterHealth() ops.ClusterHealth {
	h := r.node.Health()
	return ops.ClusterHealth{Name: h.Name, OK: h.OK, Runners: h.Runners, Owned: h.Owned, Error: h.Error}
}

// clusterSnapshot lists every account of the file: in full those running
// here, the others as the cluster's view has them.
func (r *Runner) clusterSnapshot() []ops.AccountState {
	local := map[string]ops.AccountState{}
	for _, st := range r.localSnapshot() {
		local[st.ID] = st
	}
	view := map[string]int{}
	vs := r.node.View()
	for i, v := range vs {
		view[v.ID] = i
	}
	r.mu.Lock()
	accs := append([]Account(nil), r.cfg.Accounts...)
	r.mu.Unlock()
	name := r.node.Name()
	out := make([]ops.AccountState, 0, len(accs))
	for _, a := range accs {
		if st, ok := local[a.ID]; ok && st.Running {
			st.Owner = name
			out = append(out, st)
			continue
		}
		st := ops.AccountState{ID: a.ID, AppID: a.AppID, Remote: true}
		if i, ok := view[a.ID]; ok && vs[i].Owner != name {
			st.Owner, st.RemoteState = vs[i].Owner, vs[i].State
			st.Status.SessionID, st.Status.LastSeqHandled = vs[i].Session, vs[i].Seq
		}
		if l, ok := local[a.ID]; ok && l.Fatal != "" {
			st = l
			st.Owner = name
		}
		out = append(out, st)
	}
	return out
}
