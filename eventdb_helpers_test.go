package main

// Test conveniences over the event DB's key API.

// checkAndRecord is checkAndRecordKey for an event's root element bytes.
func (db *eventDB) checkAndRecord(rootBytes []byte) (isNew bool, err error) {
	return db.checkAndRecordKey(eventKeyOf(rootBytes))
}

// seen is seenKey for an event's root element bytes.
func (db *eventDB) seen(rootBytes []byte) bool {
	return db.seenKey(eventKeyOf(rootBytes))
}
