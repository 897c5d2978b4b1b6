package store

import "strconv"

var statusNames = [...]string{
	OK:         "OK",
	NotStored:  "NotStored",
	Exists:     "Exists",
	NotFound:   "NotFound",
	TooLarge:   "TooLarge",
	NoMemory:   "NoMemory",
	NonNumeric: "NonNumeric",
}

// String returns the status's Go name, e.g. "NotStored".
func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "Status(" + strconv.Itoa(int(s)) + ")"
}

var modeNames = [...]string{
	ModeSet:     "ModeSet",
	ModeAdd:     "ModeAdd",
	ModeReplace: "ModeReplace",
	ModeAppend:  "ModeAppend",
	ModePrepend: "ModePrepend",
	ModeCAS:     "ModeCAS",
}

// String returns the mode's Go name, e.g. "ModeAppend".
func (m Mode) String() string {
	if int(m) < len(modeNames) {
		return modeNames[m]
	}
	return "Mode(" + strconv.Itoa(int(m)) + ")"
}

var lookupNames = [...]string{
	Hit:         "Hit",
	Miss:        "Miss",
	MissExpired: "MissExpired",
	MissFlushed: "MissFlushed",
}

// String returns the lookup result's Go name, e.g. "MissExpired".
func (l Lookup) String() string {
	if int(l) < len(lookupNames) {
		return lookupNames[l]
	}
	return "Lookup(" + strconv.Itoa(int(l)) + ")"
}
