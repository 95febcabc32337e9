package gen

// Realistic-looking but fictional values. Phone numbers use the 555-01xx
// block reserved for fiction, e-mail domains are the reserved example.*
// ones, and card numbers come from the networks' published test ranges.

var firstNames = []string{
	"James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
	"William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Charles", "Karen",
	"Christopher", "Lisa", "Daniel", "Nancy", "Matthew", "Betty", "Anthony", "Margaret", "Mark", "Sandra",
	"Donald", "Ashley", "Steven", "Kimberly", "Paul", "Emily", "Andrew", "Donna", "Joshua", "Michelle",
	"Kenneth", "Carol", "Kevin", "Amanda", "Brian", "Dorothy", "George", "Melissa", "Timothy", "Deborah",
	"Ronald", "Stephanie", "Edward", "Rebecca", "Jason", "Sharon", "Jeffrey", "Laura", "Ryan", "Cynthia",
	"Jacob", "Kathleen", "Gary", "Amy", "Nicholas", "Angela", "Eric", "Shirley", "Jonathan", "Anna",
	"José", "María", "Luis", "Sofía", "Chloé", "Zoë", "Renée", "Minh", "Wei", "Priya",
	"Aisha", "Omar", "Mei", "Hiroshi", "Olga", "Sean", "Siobhán", "Björn", "Ana-Lucía", "D'Andre",
}

var lastNames = []string{
	"Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
	"Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
	"Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson",
	"Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores",
	"Green", "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell", "Carter", "Roberts",
	"O'Brien", "McDonald", "Van der Berg", "Smith-Jones", "Müller", "Peña", "Østergaard", "De La Cruz", "St. John", "Kowalski",
}

var middleNames = []string{"A.", "B.", "J.", "Marie", "Lee", "Ann", "Ray", "Lynn", "James", "Grace", "Rose", "E."}

var streets = []string{
	"Main", "Oak", "Pine", "Maple", "Cedar", "Elm", "Washington", "Lake", "Hill", "Park",
	"Sunset", "Lincoln", "Jackson", "Church", "River", "Highland", "Meadow", "Forest", "Spring", "Willow",
}

var streetSuffixes = []string{"St", "Ave", "Rd", "Blvd", "Ln", "Dr", "Ct", "Way", "Pl"}

// city is a real US city with its state, one of its ZIP prefixes and an
// area code, so that an address and a phone number agree.
type city struct{ name, state, zip3, area string }

var cities = []city{
	{"Austin", "TX", "787", "512"}, {"Houston", "TX", "770", "713"}, {"Dallas", "TX", "752", "214"},
	{"New York", "NY", "100", "212"}, {"Brooklyn", "NY", "112", "718"}, {"Buffalo", "NY", "142", "716"},
	{"Los Angeles", "CA", "900", "213"}, {"San Francisco", "CA", "941", "415"}, {"San Diego", "CA", "921", "619"},
	{"Chicago", "IL", "606", "312"}, {"Springfield", "IL", "627", "217"}, {"Miami", "FL", "331", "305"},
	{"Orlando", "FL", "328", "407"}, {"Tampa", "FL", "336", "813"}, {"Seattle", "WA", "981", "206"},
	{"Spokane", "WA", "992", "509"}, {"Portland", "OR", "972", "503"}, {"Denver", "CO", "802", "303"},
	{"Phoenix", "AZ", "850", "602"}, {"Tucson", "AZ", "857", "520"}, {"Atlanta", "GA", "303", "404"},
	{"Boston", "MA", "021", "617"}, {"Philadelphia", "PA", "191", "215"}, {"Pittsburgh", "PA", "152", "412"},
	{"Columbus", "OH", "432", "614"}, {"Cleveland", "OH", "441", "216"}, {"Detroit", "MI", "482", "313"},
	{"Minneapolis", "MN", "554", "612"}, {"Nashville", "TN", "372", "615"}, {"Charlotte", "NC", "282", "704"},
	{"Newark", "NJ", "071", "973"}, {"Baltimore", "MD", "212", "410"}, {"Las Vegas", "NV", "891", "702"},
	{"Salt Lake City", "UT", "841", "801"}, {"Kansas City", "MO", "641", "816"}, {"St. Louis", "MO", "631", "314"},
	{"New Orleans", "LA", "701", "504"}, {"Milwaukee", "WI", "532", "414"}, {"Albuquerque", "NM", "871", "505"},
	{"Anchorage", "AK", "995", "907"}, {"Honolulu", "HI", "968", "808"}, {"Burlington", "VT", "054", "802"},
}

var emailDomains = []string{"example.com", "example.org", "example.net", "mail.example.com"}

var labels = []string{"", "", "Everyday", "Groceries", "Travel", "Bills", "Backup"}

// brand is a card network with a published test prefix.
type brand struct {
	name     string // as some exports spell it; the brand column is left empty half the time
	prefixes []string
	length   int
	cvvLen   int
	network  int // the data feed's published networkIdentifier: 3 Amex, 4 Visa, 5 Mastercard, 6 Discover
	debit    bool
}

var brands = []struct {
	weight int
	brand
}{
	{45, brand{"Visa", []string{"411111", "401288", "400005"}, 16, 3, 4, true}},
	{15, brand{"Mastercard", []string{"555555", "510510"}, 16, 3, 5, true}},
	{15, brand{"MASTERCARD", []string{"222100", "222300"}, 16, 3, 5, true}},
	{10, brand{"American Express", []string{"378282", "371449"}, 15, 4, 3, false}},
	{15, brand{"discover", []string{"601111", "601100"}, 16, 3, 6, true}},
}
