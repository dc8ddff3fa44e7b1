package signalapi

// Role is a participant's part in a consultation, as tokens, messages,
// records and the HTTP API spell it.
type Role string

// The two roles of a room: one participant each.
const (
	RolePatient   Role = "patient"
	RolePhysician Role = "physician"
)

// Roles are the roles of a room, in the order records list them.
var Roles = [2]Role{RolePatient, RolePhysician}

// Valid reports whether r is patient or physician.
func (r Role) Valid() bool { return r == RolePatient || r == RolePhysician }

// Other returns the role of the other participant.
func (r Role) Other() Role {
	if r == RolePhysician {
		return RolePatient
	}
	return RolePhysician
}

// ValidID reports whether s is a room, session or subject id: 1 to 64 of
// A-Z a-z 0-9 - _.
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
