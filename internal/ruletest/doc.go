// Package ruletest holds the test that runs every case of the trust rules
// through every caller — the log's admission, the client's decision and
// the auditor's deployment watch — and requires the same answer from
// each (ruletest_test.go). It has no code of its own.
package ruletest
