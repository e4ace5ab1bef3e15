package main

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/attestlog/attestlog/internal/mariadbtest"
	"github.com/attestlog/attestlog/internal/netnstest"
	"github.com/attestlog/attestlog/internal/seaweedtest"
)

// partitionTime is how long TestFrontendPartition keeps a frontend cut
// off; idleTxTimeout is the database's idle_transaction_timeout.
const (
	partitionTime = 20 * time.Second
	idleTxTimeout = 5 * time.Second
)

// TestFrontendPartition runs one log as three `attestlog log serve`
// frontends on SeaweedFS + MariaDB, each of them, the object store, the
// database and the witness on a host of its own (network namespaces),
// under writers spread over the frontends, and cuts one frontend off from
// the database and the object store (packets lost both ways, silently:
// netnstest.Partition) for partitionTime while clients still reach it,
// then heals the partition. While cut off the frontend acknowledges
// nothing and answers every statement with 503 (in bounded time: no
// request goes unanswered), while the other two go on acknowledging (at
// the latest once the database has ended a transaction the cut-off
// frontend left open: idle_transaction_timeout);
// after healing, writes through it resume. Every acknowledged entry is in
// the tree (read straight from the bucket), once; every checkpoint any
// frontend or the bucket served is consistent with it; the witness sees
// one stream.
func TestFrontendPartition(t *testing.T) {
	hosts := netnstest.New(t, "db", "s3", "fe0", "fe1", "fe2", "wit")
	dbHost, s3Host, feHosts, witHost := hosts.Hosts[0], hosts.Hosts[1], hosts.Hosts[2:5], hosts.Hosts[5]
	db := mariadbtest.StartServer(t, mariadbtest.Options{Wrap: []string{"ip", "netns", "exec", dbHost.Name}, Bind: dbHost.IP, Port: 3306})
	sw := seaweedtest.StartOptions(t, "attestlog-part", seaweedtest.Options{Wrap: []string{"ip", "netns", "exec", s3Host.Name}, Bind: s3Host.IP})

	st := newLogSetup(t, "attestlog.test/partition", witHost.IP+":7380")
	st.startWitness(t, witHost.Command)
	witURL, clientPol, op := st.witURL, st.clientPol, st.op

	// A frontend cut off in the middle of a transaction (Tessera's
	// sequencing holds a row lock of the database for the batch) would
	// hold the lock, and with it every frontend's appends, until the
	// partition heals: MariaDB waits wait_timeout (8 hours) for a silent
	// client. idle_transaction_timeout ends such a transaction sooner, as
	// docs/storage.md tells operators to.
	dsn := db.DSN + "?idle_transaction_timeout=" + strconv.Itoa(int(idleTxTimeout/time.Second))
	var listens []string
	for _, h := range feHosts {
		listens = append(listens, h.IP+":8080")
	}
	fes := st.startFrontends(t, listens, hostCommands(feHosts), func(int) string {
		return fmt.Sprintf("  s3: {bucket: %s, endpoint: %q, access_key_id: %q, secret_access_key: %q}\n  mysql: {dsn: %q}",
			sw.Bucket, sw.Endpoint, sw.AccessKeyID, sw.SecretAccessKey, dsn)
	})
	urls := fes.urls

	var bg sync.WaitGroup
	stop, halt := loadStopper(t, &bg)
	cps := watchCheckpoints(t, append([]string{sw.URL()}, urls...), clientPol, stop, &bg)
	ld := startLoad(t, urls, op, stop, &bg)

	time.Sleep(3 * time.Second)
	heal := hosts.Partition(t, feHosts[1], dbHost, s3Host)
	cut := time.Now()
	t.Logf("cut frontend 1 off from the database and the object store for %v", partitionTime)
	// What a reader of the cut-off frontend gets (reported, not
	// asserted: reads have no bound of their own yet).
	var read sync.WaitGroup
	read.Go(func() {
		time.Sleep(2 * time.Second)
		start := time.Now()
		resp, err := (&http.Client{Timeout: 15 * time.Second}).Get(urls[1] + "/checkpoint")
		if err != nil {
			t.Logf("GET /checkpoint of the cut-off frontend: no answer after %v (%v)", time.Since(start).Round(time.Millisecond), err)
			return
		}
		resp.Body.Close()
		t.Logf("GET /checkpoint of the cut-off frontend: %d after %v", resp.StatusCode, time.Since(start).Round(time.Millisecond))
	})
	time.Sleep(partitionTime)
	read.Wait()
	heal()
	healed := time.Now()
	t.Log("healed the partition")

	// Writes through frontend 1 resume.
	deadline := time.Now().Add(60 * time.Second)
	for {
		n := ld.acksSince(healed)[1]
		if n >= 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("frontend 1 acknowledged %d statements within 60 s of the healing", n)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	resumed := time.Since(healed)
	time.Sleep(2 * time.Second)
	halt()

	// While cut off, frontend 1 acknowledged nothing (but what it had
	// finished as the partition began) and answered 503 to everything;
	// the others went on.
	const grace = time.Second
	const lateAfter = idleTxTimeout + 2*time.Second
	ld.mu.Lock()
	acked, late := map[int]int{}, map[int]int{}
	for _, a := range ld.acks {
		if a.at.After(cut.Add(grace)) && a.at.Before(healed) {
			acked[a.fe]++
		}
		// After the database has ended any transaction of the cut-off
		// frontend.
		if a.at.After(cut.Add(lateAfter)) && a.at.Before(healed) {
			late[a.fe]++
		}
	}
	answers := map[int]map[int]int{0: {}, 1: {}, 2: {}}
	for _, f := range ld.failures {
		if f.at.After(cut) && f.at.Before(healed) {
			answers[f.fe][f.code]++
		}
	}
	t.Logf("%d statements acknowledged (%d not); during the partition, acknowledged by frontend %v (%v in its last %v), failures by frontend and status %v; writes through frontend 1 resumed %v after the healing", len(ld.acks), ld.fails.Load(), acked, late, partitionTime-lateAfter, answers, resumed.Round(time.Millisecond))
	ld.mu.Unlock()
	if acked[1] != 0 {
		t.Errorf("frontend 1 acknowledged %d statements while cut off from the database and the object store", acked[1])
	}
	if late[0] == 0 || late[2] == 0 {
		t.Errorf("acknowledged in the partition's last %v by frontend %v: want frontends 0 and 2 to go on", partitionTime-lateAfter, late)
	}
	if answers[1][503] == 0 {
		t.Errorf("frontend 1 answered %v while cut off: want 503s", answers[1])
	}
	for code, n := range answers[1] {
		if code != 503 {
			t.Errorf("frontend 1 answered %d statements with status %d while cut off (0: no answer within the client's 45 s): want 503", n, code)
		}
	}

	checkFinal(t, sw.URL(), clientPol, ld, cps, 60*time.Second)
	codes := witnessAnswers(t, witURL)
	t.Logf("witness add-checkpoint answers by code: %v", codes)
	if codes["200"] < 5 || codes["409"] > 2 {
		t.Errorf("witness add-checkpoint answers %v: want a stream of cosignatures with at most 2 conflicts", codes)
	}
}
