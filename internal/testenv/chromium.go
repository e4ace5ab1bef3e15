//go:build !js

package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Chromium starts headless Chromium (Debian's) for t, stopped when t
// ends, and returns its context, which ends after ten minutes. Without
// Chromium it calls Missing.
func Chromium(t *testing.T) context.Context {
	t.Helper()
	exe := LookPath(t, "chromium")
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()))
	actx, cancelA := chromedp.NewExecAllocator(t.Context(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	t.Cleanup(func() { cancel(); cancelC(); cancelA() })
	if err := chromedp.Do(ctx); err != nil {
		Missing(t, "chromium", err)
	}
	return ctx
}
