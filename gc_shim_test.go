package main

// gcDBWrites is the event DB's write calls and records so far.
func gcDBWrites(db *eventDB) (writes, records int) {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.writes, db.records
}

// gcSpoolWrites is the spool's write calls and records so far.
func gcSpoolWrites(s *spool) (writes, records uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes, s.next
}
