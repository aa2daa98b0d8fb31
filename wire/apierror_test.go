package wire_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/qqgate/qqgate/wire"
)

// Every answer of the platform, discovery, token or send, is classified by
// one table and matches the sentinel of its class.
func TestAPIErrorClasses(t *testing.T) {
	cases := []struct {
		status   int
		body     string
		class    wire.Class
		sentinel error
	}{
		{401, `{"message":"token not exist or expire","code":11244,"err_code":11244}`, wire.ClassToken, wire.ErrToken},
		{401, ``, wire.ClassToken, wire.ErrToken},
		{400, `{"err_code":11242}`, wire.ClassToken, wire.ErrToken},
		{429, ``, wire.ClassRateLimited, wire.ErrRateLimited},
		{200, `{"code":100001}`, wire.ClassRateLimited, wire.ErrRateLimited},
		{400, `{"code":20028}`, wire.ClassRateLimited, wire.ErrRateLimited},
		{500, `{"message":"Too Many Requests"}`, wire.ClassRateLimited, wire.ErrRateLimited},
		{500, `<html>oops</html>`, wire.ClassTransient, wire.ErrTransient},
		{503, `{"code":12345,"message":"internal error"}`, wire.ClassTransient, wire.ErrTransient},
		{400, `{"code":304082}`, wire.ClassTransient, wire.ErrTransient},
		{400, `{"code":22009,"message":"msg limit exceed"}`, wire.ClassQuota, wire.ErrQuota},
		{400, `{"code":0,"err_code":40054005}`, wire.ClassDuplicate, wire.ErrDuplicate},
		{500, `{"code":40054005}`, wire.ClassDuplicate, wire.ErrDuplicate},
		{400, `{"code":304027}`, wire.ClassReplyWindow, wire.ErrReplyWindow},
		{400, `{"code":304025}`, wire.ClassContent, wire.ErrContent},
		{403, ``, wire.ClassPermission, wire.ErrPermission},
		{400, `{"code":40034102}`, wire.ClassPermission, wire.ErrPermission},
		{400, `{"code":40054004}`, wire.ClassTarget, wire.ErrTarget},
		{202, `{"code":304023}`, wire.ClassPendingAudit, wire.ErrPendingAudit},
		{404, `not found`, wire.ClassOther, nil},
		{200, `{"code":100016,"message":"invalid appid or secret"}`, wire.ClassOther, nil},
	}
	all := []error{wire.ErrToken, wire.ErrRateLimited, wire.ErrTransient, wire.ErrQuota, wire.ErrDuplicate,
		wire.ErrReplyWindow, wire.ErrContent, wire.ErrPermission, wire.ErrTarget, wire.ErrPendingAudit}
	for _, tc := range cases {
		name := fmt.Sprintf("%d %s", tc.status, tc.body)
		e := wire.DecodeAPIError(tc.status, "", []byte(tc.body))
		if !assert.NotNil(t, e, name) {
			continue
		}
		assert.Equal(t, tc.class, e.Class(), name)
		assert.Equal(t, tc.class, wire.Classify(fmt.Errorf("wrapped: %w", e)), name)
		for _, s := range all {
			want := s == tc.sentinel || (s == wire.ErrQuota && e.EffectiveCode() == wire.CodeActiveDenied)
			assert.Equal(t, want, errors.Is(e, s), "%s is %v", name, s)
		}
		temp := tc.class == wire.ClassRateLimited || tc.class == wire.ClassTransient
		assert.Equal(t, temp, e.Temporary(), name)
	}
	assert.ErrorIs(t, wire.DecodeAPIError(400, "", []byte(`{"code":40034102}`)), wire.ErrQuota,
		"active message refused: a quota too")
}

func TestClassOf(t *testing.T) {
	assert.Equal(t, wire.ClassToken, wire.ClassOf(401, 0))
	assert.Equal(t, wire.ClassDuplicate, wire.ClassOf(401, wire.CodeDuplicateSeq), "a known code wins over the status")
	assert.Equal(t, wire.ClassTransient, wire.ClassOf(503, 777), "an unknown code falls back to the status")
	assert.Equal(t, wire.ClassPendingAudit, wire.ClassOf(202, 0))
	assert.Equal(t, wire.ClassOther, wire.ClassOf(404, 0))
}

func TestClassify(t *testing.T) {
	assert.Equal(t, wire.Class(""), wire.Classify(nil))
	assert.Equal(t, wire.ClassQuota, wire.Classify(fmt.Errorf("x: %w", wire.ErrQuota)))
	assert.Equal(t, wire.ClassTransient, wire.Classify(fmt.Errorf("x: %w", wire.ErrTransient)))
	assert.Equal(t, wire.ClassCanceled, wire.Classify(fmt.Errorf("x: %w", context.Canceled)))
	assert.Equal(t, wire.ClassCanceled, wire.Classify(context.DeadlineExceeded))
	assert.Equal(t, wire.ClassTransient, wire.Classify(&net.OpError{Op: "dial", Err: errors.New("refused")}))
	assert.Equal(t, wire.ClassOther, wire.Classify(errors.New("boom")))
}
