"""Static tables the generator draws from: offices, departments, titles, meeting subjects, apps, roles.

Nothing here is random: the generator picks from these with its seeded RNGs. Everything that looks
like contact data is fictional (phone numbers in the ranges regulators reserve for drama where they
exist, `.example` domains for every company but Microsoft's own senders).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Place:
    city: str
    state: str | None
    country_code: str  # ISO 3166 alpha-2, as sign-in logs give countryOrRegion
    ip_prefix: str  # first two octets of addresses seen from there
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class Office:
    city: str
    country: str  # as Entra stores `country` on a user
    country_code: str  # usageLocation
    locale: str  # faker locale for the people hired there
    tz: str
    state: str | None
    phone_prefix: str  # business phone, four digits follow
    mobile_prefix: str  # mobile phone, three digits follow
    lat: float
    lon: float
    homes: tuple[tuple[str, str | None], ...]  # (city, state) commuter towns nearby
    isp_prefixes: tuple[str, ...]  # home broadband / mobile carrier address blocks (first two octets)
    office_prefix: str  # the office's egress block (first three octets)


OFFICES: tuple[Office, ...] = (
    Office("London", "United Kingdom", "GB", "en_GB", "Europe/London", "England", "+44 20 7946 ",
           "+44 7700 900", 51.51, -0.13,
           (("Croydon", "England"), ("Reading", "England"), ("St Albans", "England"), ("Guildford", "England")),
           ("81.2", "86.140", "92.40"), "195.12.48"),
    Office("New York", "United States", "US", "en_US", "America/New_York", "New York", "+1 212 555 ",
           "+1 917 555 0", 40.71, -74.01,
           (("Brooklyn", "New York"), ("Jersey City", "New Jersey"), ("Stamford", "Connecticut"),
            ("Hoboken", "New Jersey")),
           ("68.173", "72.229", "100.2"), "38.104.12"),
    Office("Berlin", "Germany", "DE", "de_DE", "Europe/Berlin", "Berlin", "+49 30 901820 ", "+49 1512 3456",
           52.52, 13.40, (("Potsdam", "Brandenburg"), ("Oranienburg", "Brandenburg"), ("Bernau", "Brandenburg")),
           ("84.150", "91.64", "178.24"), "212.23.103"),
    Office("Amsterdam", "Netherlands", "NL", "nl_NL", "Europe/Amsterdam", "North Holland", "+31 20 794 ",
           "+31 6 1234 5", 52.37, 4.90,
           (("Haarlem", "North Holland"), ("Utrecht", "Utrecht"), ("Amstelveen", "North Holland")),
           ("77.160", "84.241", "145.53"), "185.3.208"),
    Office("Paris", "France", "FR", "fr_FR", "Europe/Paris", "Île-de-France", "+33 1 99 00 ", "+33 6 39 98 0",
           48.86, 2.35,
           (("Versailles", "Île-de-France"), ("Boulogne-Billancourt", "Île-de-France"),
            ("Saint-Denis", "Île-de-France")),
           ("90.3", "78.192", "176.145"), "62.210.16"),
    Office("Madrid", "Spain", "ES", "es_ES", "Europe/Madrid", "Madrid", "+34 91 123 ", "+34 600 000 ",
           40.42, -3.70, (("Alcalá de Henares", "Madrid"), ("Getafe", "Madrid"), ("Móstoles", "Madrid")),
           ("83.44", "88.6", "79.148"), "213.97.44"),
    Office("Oslo", "Norway", "NO", "no_NO", "Europe/Oslo", "Oslo", "+47 22 00 ", "+47 400 00 ",
           59.91, 10.75, (("Bærum", "Viken"), ("Lillestrøm", "Viken"), ("Asker", "Viken")),
           ("84.208", "46.15", "89.10"), "193.90.140"),
    Office("Seattle", "United States", "US", "en_US", "America/Los_Angeles", "Washington", "+1 206 555 ",
           "+1 425 555 0", 47.61, -122.33,
           (("Bellevue", "Washington"), ("Redmond", "Washington"), ("Tacoma", "Washington")),
           ("73.42", "50.35", "24.16"), "131.107.12"),
    Office("Manchester", "United Kingdom", "GB", "en_GB", "Europe/London", "England", "+44 161 496 ",
           "+44 7700 900", 53.48, -2.24,
           (("Stockport", "England"), ("Salford", "England"), ("Bolton", "England")),
           ("86.12", "92.18", "109.150"), "195.59.20"),
    Office("Munich", "Germany", "DE", "de_DE", "Europe/Berlin", "Bavaria", "+49 89 2019 ", "+49 1520 7654",
           48.14, 11.58, (("Freising", "Bavaria"), ("Dachau", "Bavaria"), ("Augsburg", "Bavaria")),
           ("93.104", "87.140", "46.114"), "217.110.32"),
    Office("Austin", "United States", "US", "en_US", "America/Chicago", "Texas", "+1 512 555 ",
           "+1 737 555 0", 30.27, -97.74,
           (("Round Rock", "Texas"), ("Cedar Park", "Texas"), ("Pflugerville", "Texas")),
           ("70.112", "97.99", "107.77"), "12.203.88"),
    Office("Dublin", "Ireland", "IE", "en_IE", "Europe/Dublin", "Leinster", "+353 1 555 ", "+353 85 555 ",
           53.35, -6.26, (("Dún Laoghaire", "Leinster"), ("Swords", "Leinster"), ("Bray", "Leinster")),
           ("86.40", "89.100", "109.77"), "193.1.64"),
    Office("Stockholm", "Sweden", "SE", "sv_SE", "Europe/Stockholm", "Stockholm", "+46 8 123 ",
           "+46 70 174 0", 59.33, 18.07, (("Solna", "Stockholm"), ("Nacka", "Stockholm"), ("Uppsala", "Uppsala")),
           ("83.248", "90.229", "155.4"), "194.17.96"),
    Office("Warsaw", "Poland", "PL", "pl_PL", "Europe/Warsaw", "Masovia", "+48 22 555 ", "+48 500 555 ",
           52.23, 21.01, (("Piaseczno", "Masovia"), ("Pruszków", "Masovia"), ("Łomianki", "Masovia")),
           ("83.24", "89.64", "178.43"), "195.116.20"),
)

# Offices that make a plausible headquarters (the first few of OFFICES).
HQ_CANDIDATES = 5

# Far-away places nobody in the org signs in from normally: new-country and impossible-travel anomalies.
FOREIGN_PLACES: tuple[Place, ...] = (
    Place("Lagos", "Lagos", "NG", "102.89", 6.52, 3.38),
    Place("São Paulo", "São Paulo", "BR", "177.71", -23.55, -46.63),
    Place("Moscow", "Moscow", "RU", "95.165", 55.76, 37.62),
    Place("Singapore", None, "SG", "103.6", 1.35, 103.82),
    Place("Hanoi", "Hanoi", "VN", "14.161", 21.03, 105.85),
    Place("Jakarta", "Jakarta", "ID", "36.72", -6.21, 106.85),
    Place("Beijing", "Beijing", "CN", "123.112", 39.90, 116.40),
    Place("Sydney", "New South Wales", "AU", "1.144", -33.87, 151.21),
    Place("Tokyo", "Tokyo", "JP", "126.77", 35.68, 139.69),
    Place("Mumbai", "Maharashtra", "IN", "49.36", 19.08, 72.88),
    Place("Johannesburg", "Gauteng", "ZA", "41.13", -26.20, 28.05),
    Place("Buenos Aires", "Buenos Aires", "AR", "181.46", -34.60, -58.38),
    Place("Istanbul", "Istanbul", "TR", "78.180", 41.01, 28.98),
    Place("Bucharest", "Bucharest", "RO", "86.120", 44.43, 26.10),
    Place("Mexico City", "Mexico City", "MX", "187.189", 19.43, -99.13),
)

# Anonymising proxies / hosting ranges that identity protection scores as risky.
ANONYMOUS_PREFIXES = ("185.220", "104.244", "45.153", "23.129")


@dataclass(frozen=True, slots=True)
class Department:
    name: str
    nickname: str
    weight: float
    min_size: int
    head_title_small: str
    head_title_large: str
    manager_title: str
    areas: tuple[str, ...]
    ic_titles: tuple[str, ...]  # repeated entries weigh more
    team_meetings: tuple[str, ...]  # extra recurring team meeting subjects ({team} is filled in)
    topics: tuple[str, ...]  # what mail and meetings are about
    external_share: float  # how much of this department's mail and meetings involve outsiders


DEPARTMENTS: tuple[Department, ...] = (
    Department(
        "IT", "it", 0.06, 5, "Head of IT", "Chief Information Officer", "IT Manager",
        ("Service Desk", "Identity & Access", "Cloud Infrastructure", "End User Computing", "IT Security",
         "Network", "Collaboration Services", "Enterprise Applications"),
        ("Systems Administrator",),
        ("{team} change review",),
        ("the laptop refresh", "the Intune rollout", "MFA enrolment", "the VPN outage", "licence true-up",
         "the Conditional Access policy", "the ServiceNow upgrade", "printer fleet", "backup restore test",
         "the Exchange migration"),
        0.08),
    Department(
        "Engineering", "engineering", 0.28, 3, "Head of Engineering", "Chief Technology Officer",
        "Engineering Manager",
        ("Platform", "Payments", "Identity", "Search", "Mobile", "Web", "Data", "Infrastructure", "Reliability",
         "Observability", "Billing", "Integrations", "Developer Experience", "Checkout", "Notifications",
         "Machine Learning", "Core API", "Storage", "Networking", "Frontend", "Release Engineering", "Growth",
         "Analytics", "Messaging", "Onboarding Flow", "Pricing", "Ledger", "Risk Engine"),
        ("Software Engineer", "Software Engineer", "Senior Software Engineer", "Senior Software Engineer",
         "Staff Software Engineer", "QA Engineer", "Site Reliability Engineer", "Data Engineer",
         "Frontend Engineer", "Backend Engineer"),
        ("Sprint planning: {team}", "{team} retro", "{team} standup"),
        ("the release plan", "API rate limits", "the on-call rota", "sprint scope", "the incident review",
         "the database migration", "code review guidelines", "the Kubernetes upgrade", "flaky tests",
         "the architecture proposal", "latency regression", "the feature flag cleanup"),
        0.03),
    Department(
        "Sales", "sales", 0.16, 3, "Head of Sales", "Chief Revenue Officer", "Sales Manager",
        ("EMEA Enterprise", "North America Enterprise", "Mid-Market", "SMB", "Inside Sales", "Partnerships",
         "Public Sector", "Renewals", "Solutions Engineering", "DACH", "Nordics", "Benelux", "UK & Ireland",
         "Iberia", "France", "Strategic Accounts"),
        ("Account Executive", "Account Executive", "Senior Account Executive", "Sales Development Representative",
         "Sales Development Representative", "Sales Engineer", "Account Manager"),
        ("Pipeline review: {team}", "{team} forecast call"),
        ("the Q3 forecast", "the renewal quote", "pricing approval", "the pipeline", "territory planning",
         "the sales kickoff", "discount approval", "the RFP response", "commission statements"),
        0.35),
    Department(
        "Customer Support", "support", 0.12, 3, "Head of Customer Support", "VP of Customer Support",
        "Support Team Lead",
        ("Tier 1 Support", "Tier 2 Support", "Customer Success", "Onboarding", "Support Operations",
         "Escalations", "Knowledge Base", "Premier Support"),
        ("Support Specialist", "Support Specialist", "Senior Support Specialist", "Technical Support Engineer",
         "Customer Success Manager"),
        ("{team} queue review",),
        ("the escalation backlog", "CSAT scores", "the knowledge base refresh", "SLA breaches", "ticket routing",
         "the weekend rota", "macro updates"),
        0.25),
    Department(
        "Marketing", "marketing", 0.08, 3, "Head of Marketing", "Chief Marketing Officer", "Marketing Manager",
        ("Brand", "Content", "Demand Generation", "Product Marketing", "Events", "Digital", "Communications",
         "Marketing Operations", "Creative Studio", "Social Media"),
        ("Marketing Specialist", "Content Marketing Manager", "Product Marketing Manager", "Marketing Analyst",
         "Graphic Designer", "Campaign Manager", "Copywriter"),
        ("{team} campaign review",),
        ("the campaign brief", "the webinar", "the launch plan", "brand guidelines", "the trade show",
         "the newsletter", "lead scoring", "the press release"),
        0.15),
    Department(
        "Finance", "finance", 0.06, 3, "Head of Finance", "Chief Financial Officer", "Finance Manager",
        ("Accounting", "FP&A", "Payroll", "Treasury", "Tax", "Accounts Payable", "Revenue Accounting", "Audit"),
        ("Financial Analyst", "Accountant", "Senior Accountant", "Payroll Specialist", "Accounts Payable Specialist",
         "Tax Analyst"),
        ("Month-end close: {team}",),
        ("the month-end close", "the budget", "expense reports", "the audit", "VAT returns", "the forecast model",
         "invoice approvals", "the payroll run"),
        0.10),
    Department(
        "Product", "product", 0.06, 3, "Head of Product", "Chief Product Officer", "Group Product Manager",
        ("Core Product", "Product Design", "UX Research", "Product Analytics", "Growth Product", "Platform Product",
         "Mobile Product"),
        ("Product Manager", "Product Manager", "Senior Product Manager", "UX Designer", "UX Researcher",
         "Product Analyst", "Product Designer"),
        ("{team} roadmap review", "Design critique: {team}"),
        ("the roadmap", "the PRD", "user interviews", "the beta feedback", "OKRs", "the pricing experiment",
         "the design system"),
        0.05),
    Department(
        "Operations", "operations", 0.07, 3, "Head of Operations", "Chief Operating Officer", "Operations Manager",
        ("Facilities", "Procurement", "Business Operations", "Workplace", "Supply Chain", "Vendor Management",
         "Logistics"),
        ("Operations Analyst", "Facilities Coordinator", "Procurement Specialist", "Office Manager",
         "Business Operations Analyst", "Logistics Coordinator"),
        ("{team} ops review",),
        ("the office move", "vendor onboarding", "the purchase order", "the fire drill", "desk booking",
         "the supplier contract", "the travel policy"),
        0.20),
    Department(
        "HR", "hr", 0.05, 3, "Head of People", "Chief People Officer", "HR Manager",
        ("Talent Acquisition", "People Partners", "Learning & Development", "Compensation & Benefits",
         "People Operations", "Employee Experience"),
        ("HR Business Partner", "Recruiter", "Recruiter", "HR Generalist", "Talent Acquisition Specialist",
         "People Operations Specialist", "Learning Specialist"),
        ("{team} hiring sync",),
        ("the hiring plan", "the engagement survey", "onboarding", "the benefits renewal", "performance reviews",
         "the parental leave policy", "interview feedback"),
        0.12),
    Department(
        "Legal", "legal", 0.03, 3, "Head of Legal", "General Counsel", "Legal Manager",
        ("Commercial", "Privacy", "Compliance", "Corporate", "Employment"),
        ("Legal Counsel", "Senior Legal Counsel", "Paralegal", "Contracts Manager", "Compliance Analyst",
         "Privacy Analyst"),
        ("{team} contract review",),
        ("the MSA redlines", "the DPA", "the NDA", "GDPR requests", "the compliance training", "trademark filing",
         "the policy update"),
        0.20),
)

# IT's first-line teams: titles by area (the Service Desk staff become the helpdesk agents).
IT_AREA_TITLES: dict[str, tuple[str, ...]] = {
    "Service Desk": ("Service Desk Analyst", "Service Desk Analyst", "IT Support Specialist",
                     "Senior Service Desk Analyst"),
    "Identity & Access": ("Identity Engineer", "IAM Analyst", "Senior Identity Engineer"),
    "Cloud Infrastructure": ("Cloud Engineer", "Systems Administrator", "Senior Cloud Engineer"),
    "End User Computing": ("Desktop Support Engineer", "Endpoint Engineer", "IT Support Technician"),
    "IT Security": ("Security Analyst", "Security Engineer", "SOC Analyst"),
    "Network": ("Network Engineer", "Senior Network Engineer"),
    "Collaboration Services": ("Microsoft 365 Administrator", "Collaboration Engineer"),
    "Enterprise Applications": ("Business Systems Analyst", "Salesforce Administrator", "ERP Analyst"),
}
SERVICE_DESK = "Service Desk"
SERVICE_DESK_MANAGER = "Service Desk Manager"

# Titles by height above the front line (1 leads individual contributors).
LEVEL_TITLES = {2: "Director of {dept}", 3: "Senior Director of {dept}", 4: "VP of {dept}", 5: "SVP of {dept}"}
LEVEL_TITLES_AREA = {2: "Director, {area}", 3: "Senior Director, {area}", 4: "VP, {area}", 5: "SVP, {area}"}

# Small projects that span two or three teams.
PROJECT_ADJECTIVES = (
    "Blue", "Silver", "Northern", "Quiet", "Rapid", "Golden", "Crimson", "Bright", "Iron", "Hidden", "Amber",
    "Polar", "Velvet", "Copper", "Emerald", "Lunar", "Solar", "Swift", "Stone", "Wild", "Coral", "Cobalt",
    "Scarlet", "Misty", "Granite", "Jade", "Falcon", "Ivory", "Onyx", "Azure",
)
PROJECT_NOUNS = (
    "Atlas", "Harbor", "Falcon", "Horizon", "Lighthouse", "Compass", "Summit", "Beacon", "Phoenix", "Orbit",
    "Glacier", "Meridian", "Voyager", "Keystone", "Pioneer", "Cascade", "Aurora", "Sentinel", "Nimbus", "Quartz",
    "Tundra", "Canyon", "Delta", "Ember", "Fjord", "Harvest", "Juniper", "Kestrel", "Lantern", "Mosaic", "Nova",
    "Oasis", "Prism", "Raven", "Sequoia", "Trellis", "Umbra", "Vertex", "Willow", "Zephyr",
)
PROJECT_MEETINGS = ("{project} sync", "Project {project} weekly", "{project} working session",
                    "{project} status", "{project} steering")
PROJECT_ONE_OFFS = ("{project} kickoff", "{project} design review", "{project} go/no-go",
                    "{project} risk review", "{project} demo")

ONE_ON_ONE_SUBJECTS = ("{a} / {b} 1:1", "1:1 {a} & {b}", "{a} <> {b}", "{b} / {a} weekly catch-up", "1:1 - {a}")
TEAM_SYNC_SUBJECTS = ("{team} weekly sync", "{team} team meeting", "{team} weekly", "{team} check-in")
STAFF_SUBJECTS = ("{team} leadership sync", "{name}'s staff meeting", "{team} leads weekly")
EXEC_SUBJECTS = ("Executive team weekly", "ELT meeting")

CROSS_SUBJECTS = (
    "Q{q} planning: {d1} x {d2}", "Budget review with {d2}", "Security awareness training",
    "Office move planning", "Hiring committee", "Customer escalation: {company}", "Audit prep with {d2}",
    "Vendor selection: {company}", "{d1} / {d2} handover", "Process improvement workshop",
    "Quarterly business review prep", "Incident postmortem: {topic}",
)
EXTERNAL_SUBJECTS = (
    "{company} <> {us}: intro call", "{company} QBR", "Demo for {company}", "{company} renewal discussion",
    "{company} onboarding call", "Contract review with {company}", "{company} escalation call",
    "Vendor sync: {company}", "{company} implementation check-in",
)
PRIVATE_SUBJECTS = ("Performance conversation", "Compensation review", "Career check-in",
                    "Confidential: reorg planning", "Offer discussion", "Mid-year review")
PERSONAL_BLOCKS = ("Dentist", "Doctor's appointment", "School run", "Personal appointment", "Physio",
                   "Parents' evening")
FOCUS_SUBJECTS = ("Focus time", "Focus time", "Deep work", "Heads down - no meetings", "Prep time")

CHAT_TOPICS_TEAM = ("{team} crew", "{team} banter", "{team} 🎉", "Lunch crew", None, None, "{team} chat",
                    "Coffee ☕", "{team} war room")
CHAT_TOPICS_CROSS = ("{city} office social", "Book club", "Running club 🏃", "Board games night", None,
                     "Friday drinks", "Mentoring circle")

CHAT_LINES = (
    "Morning! Have you got 5 min?", "Can you take a look at this when you get a chance?", "Thanks, that's great",
    "Running 5 min late, sorry", "Sure, give me a sec", "Done ✅", "I've updated the doc", "Sounds good to me",
    "Let's pick this up tomorrow", "Did you see the email from finance?", "👍", "Haha yes", "Can we move our 1:1?",
    "I'm out tomorrow afternoon FYI", "Any update on this?", "Just shared the deck", "On it",
    "Can you join the call?", "Lunch?", "Great work today 🙌", "Quick question about the ticket",
    "I'll ping them and come back to you", "Calendar invite sent", "Let me check and get back to you",
    "Is this still blocked?", "Merged, thanks for the review", "Can you approve my PR?", "The link doesn't work for me",
    "Sorry, was in back-to-backs", "Perfect", "Who owns this now?", "Agree 100%", "Let's discuss in the team meeting",
    "Heads up: the build is red", "I'll be in the office on Thursday", "Have a good weekend!", "Happy Monday 😄",
    "Can you send me the latest version?", "Nice one", "Noted, thanks", "See you there", "Dialling in now",
    "My VPN keeps dropping, anyone else?", "Coffee at 3?", "What time works for you tomorrow?",
    "I've added comments in the doc", "Thanks for covering for me", "Shall we grab a room?", "Approved",
    "The customer is asking for an ETA",
)

NEWSLETTERS = (
    ("Industry Weekly", "newsletter@industryweekly.example"), ("Cloud Digest", "digest@clouddigest.example"),
    ("Management Tip of the Day", "tips@managementtips.example"), ("The Morning Brief", "brief@morningbrief.example"),
    ("DevOps Weekly", "hello@devopsweekly.example"), ("Finance Today", "news@financetoday.example"),
    ("Security Bulletin", "bulletin@secnews.example"), ("Product Hunt Daily", "daily@producthunt.example"),
)
NEWSLETTER_SUBJECTS = ("Your weekly digest", "This week in {topic}", "5 things to read today",
                       "Top stories for you", "Issue #{n}: what's new", "Don't miss: upcoming webinar")
AUTOMATED_INTERNAL = (  # (display name, local part, subject templates)
    ("IT Service Desk", "servicedesk", ("[INC{n}] Your ticket has been updated", "[INC{n}] Resolved: {topic}",
                                        "[REQ{n}] Request approved")),
    ("Jira", "jira", ("[JIRA] ({key}-{n}) {topic}", "[JIRA] You were mentioned in {key}-{n}",
                      "[JIRA] {key}-{n} assigned to you")),
    ("Workday", "workday", ("Your timesheet is due", "Action required: approve time off", "Inbox: 1 new task")),
    ("Concur Expense", "concur", ("Expense report approved", "Reminder: expense report pending",
                                  "Your expense report was returned")),
)
MICROSOFT_SENDERS = (
    ("Microsoft Teams", "no-reply@teams.mail.microsoft", ("You have {n} missed activities in Teams",
                                                          "{name} mentioned you in {team}")),
    ("SharePoint Online", "no-reply@sharepointonline.com", ("{name} shared \"{topic}\" with you",
                                                           "{name} commented on a file")),
    ("Microsoft Viva", "viva-noreply@microsoft.com", ("Your weekly digest from Viva Insights",
                                                      "Protect time for focused work")),
    ("Microsoft Outlook", "no-reply@microsoft.com", ("Your mailbox is almost full",)),
)
INTERNAL_SUBJECTS = ("Re: {topic}", "{topic}", "FW: {topic}", "Quick question about {topic}", "Notes: {topic}",
                     "Re: Re: {topic}", "Action items - {topic}", "Update on {topic}", "Following up on {topic}")
MANAGER_SUBJECTS = ("Re: your 1:1 agenda", "{team} weekly update", "Priorities for this week", "Re: {topic}",
                    "Team offsite dates", "FYI: {topic}", "Headcount update")
PROJECT_SUBJECTS = ("[{project}] status update", "{project}: timeline", "Re: {project} open questions",
                    "{project} weekly notes", "{project} demo recording")
OTHER_DEPT_SUBJECTS = ("Benefits enrolment reminder", "Updated travel policy", "Q{q} all-hands recording",
                       "Office closure on Friday", "Fire drill next week", "Reminder: submit your expenses",
                       "New starter announcement", "Survey: how are we doing?", "Parking update")
EXTERNAL_MAIL_SUBJECTS = ("Re: Proposal", "Invoice {n}", "Meeting follow-up", "Renewal quote for {us}",
                          "Re: Contract redlines", "Introduction", "Thank you for your time today",
                          "Re: Support case {n}", "Partnership opportunity", "Re: Onboarding next steps")

EXTERNAL_TITLES = ("Account Manager", "Sales Director", "Consultant", "CTO", "Procurement Lead", "Partner",
                   "Solutions Architect", "Customer Success Manager", "Project Manager", "Founder")
PERSONAL_MAIL_DOMAINS = ("mail.example", "inbox.example", "post.example")


@dataclass(frozen=True, slots=True)
class AppProfile:
    name: str
    client: str  # clientAppUsed
    weight: int
    mobile: bool  # appears from phones
    desktop: bool  # appears from laptops


APPS: tuple[AppProfile, ...] = (
    AppProfile("Microsoft Teams", "Mobile Apps and Desktop clients", 30, True, True),
    AppProfile("Microsoft Office", "Mobile Apps and Desktop clients", 14, False, True),
    AppProfile("Outlook Mobile", "Mobile Apps and Desktop clients", 12, True, False),
    AppProfile("OfficeHome", "Browser", 10, False, True),
    AppProfile("Office 365 Exchange Online", "Browser", 8, False, True),
    AppProfile("Office 365 SharePoint Online", "Browser", 8, True, True),
    AppProfile("Windows Sign In", "Mobile Apps and Desktop clients", 10, False, True),
    AppProfile("My Apps", "Browser", 3, False, True),
    AppProfile("Microsoft Edge", "Mobile Apps and Desktop clients", 4, False, True),
)
IT_APPS: tuple[AppProfile, ...] = (
    AppProfile("Azure Portal", "Browser", 12, False, True),
    AppProfile("Microsoft Entra admin center", "Browser", 6, False, True),
)

# (operatingSystem, browser, isCompliant, isManaged, mobile)
LAPTOPS = (("Windows10", "Edge 131.0.0", True, True, False), ("Windows10", "Chrome 131.0.0", True, True, False),
           ("MacOs", "Chrome 131.0.0", True, True, False), ("MacOs", "Safari 18.1", True, True, False))
PHONES = (("Ios", "Mobile Safari 18.1", False, False, True), ("Ios", "Rich Client 5.7.0", True, True, True),
          ("Android", "Chrome Mobile 131.0.0", False, False, True),
          ("Android", "Rich Client 5.7.0", True, True, True))
ATTACKER_DEVICES = (("Windows10", "Chrome 120.0.0", False, False, False),
                    ("Linux", "Firefox 115.0", False, False, False),
                    ("Windows10", "Python Requests 2.31", False, False, False),
                    ("MacOs", "Safari 17.0", False, False, False))

FAILURE_INVALID_PASSWORD = (50126, "Error validating credentials due to invalid username or password.")
FAILURE_LOCKED = (50053, "Account is locked because user tried to sign in too many times with an incorrect user ID "
                         "or password.")
FAILURE_MFA_REQUIRED = (50074, "Strong Authentication is required.")


@dataclass(frozen=True, slots=True)
class Role:
    id: str
    name: str
    description: str
    privileged: bool  # Entra's PRIVILEGED label (Microsoft Entra built-in roles reference)


# Entra's well-known role template ids, descriptions as Microsoft documents them.
ROLES: tuple[Role, ...] = (
    Role("62e90394-69f5-4237-9190-012177145e10", "Global Administrator",
         "Can manage all aspects of Microsoft Entra ID and Microsoft services that use Microsoft Entra identities.",
         True),
    Role("e8611ab8-c189-46e8-94e1-60213ab1f814", "Privileged Role Administrator",
         "Can manage role assignments in Microsoft Entra ID, and all aspects of Privileged Identity Management.",
         True),
    Role("7be44c8a-adaf-4e2a-84d6-ab2649e08a13", "Privileged Authentication Administrator",
         "Can access to view, set and reset authentication method information for any user (admin or non-admin).",
         True),
    Role("c4e39bd9-1100-46d3-8c65-fb160da0071f", "Authentication Administrator",
         "Can access to view, set and reset authentication method information for any non-admin user.", True),
    Role("729827e3-9c14-49f7-bb1b-9608f156bbb8", "Helpdesk Administrator",
         "Can reset passwords for non-administrators and Helpdesk Administrators.", True),
    Role("fe930be7-5e62-47db-91af-98c3a49a38b1", "User Administrator",
         "Can manage all aspects of users and groups, including resetting passwords for limited admins.", True),
    Role("966707d0-3269-4727-9be2-8c3a10f19b9d", "Password Administrator",
         "Can reset passwords for non-administrators and Password Administrators.", True),
    Role("194ae4cb-b126-40b2-bd5b-6091b380977d", "Security Administrator",
         "Can read security information and reports, and manage configuration in Microsoft Entra ID and Office 365.",
         True),
    Role("29232cdf-9323-42fd-ade2-1d097af3e4de", "Exchange Administrator",
         "Can manage all aspects of the Exchange product.", False),
    Role("f28a1f50-f6e7-4571-818b-6a12f2af6b6c", "SharePoint Administrator",
         "Can manage all aspects of the SharePoint service.", False),
    Role("69091246-20e8-4a56-aa4d-066075b2a7a8", "Teams Administrator", "Can manage the Microsoft Teams service.",
         False),
    Role("f2ef992c-3afb-46b9-b7cf-a126ee74c451", "Global Reader",
         "Can read everything that a Global Administrator can, but not update anything.", True),
    Role("5d6b6bb7-de71-4623-b4af-96380a352509", "Security Reader",
         "Can read security information and reports in Microsoft Entra ID and Office 365.", True),
    Role("b0f54661-2d74-4c50-afa3-1ec803f12efe", "Billing Administrator",
         "Can perform common billing related tasks like updating payment information.", False),
    Role("9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3", "Application Administrator",
         "Can create and manage all aspects of app registrations and enterprise apps.", True),
    Role("fdd7a751-b60b-444a-984c-02652fe8fa1c", "Groups Administrator",
         "Members of this role can create/manage groups, create/manage groups settings like naming and expiration "
         "policies, and view groups activity and audit reports.", False),
)
ROLE_ID = {r.name: r.id for r in ROLES}

# Groups people join for reasons other than work: nobody's work partners predict these.
INTEREST_GROUPS = ("Book Club", "Running Club", "Parents Network", "Women in Tech", "Pride Network",
                   "Cycling Club", "Photography", "Board Games", "Sustainability Champions", "Mentoring Programme",
                   "Wellbeing Champions", "Volunteering", "Football", "Music Lovers", "Language Exchange")
APP_ACCESS_GROUPS = (  # (app, departments whose people mostly get it)
    ("Salesforce", ("Sales", "Customer Support", "Marketing")), ("Jira", ("Engineering", "Product", "IT")),
    ("GitHub", ("Engineering",)), ("Workday", ("HR", "Finance")), ("SAP", ("Finance", "Operations")),
    ("Zendesk", ("Customer Support",)), ("Figma", ("Product", "Marketing")), ("Tableau", ("Finance", "Sales")),
    ("DocuSign", ("Legal", "Sales")), ("ServiceNow", ("IT",)),
)
