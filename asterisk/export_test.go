package asterisk

// NumChannels reports how many channels the tracker still holds (tests: nothing leaks).
func (t *Tracker) NumChannels() int { return len(t.chans) }

// NumPairs reports how many Local channel pairs the tracker still holds.
func (t *Tracker) NumPairs() int { return len(t.pairs) }
