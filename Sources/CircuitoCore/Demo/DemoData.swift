/// The Turin circuit the demo builds, taken from the seed documents (../shared/seeds): the PIS plan (Cooperativa
/// Terra Mia and partners), the Case del Quartiere help desks and their partners ("Comunità inclusive"), Reti delle
/// Opportunità (Fondazione Piazza dei Mestieri), and PassoParola's kinds of opportunity. Organisation names are
/// the seeds' partners; people, shops and amounts are invented. Districts are Turin neighbourhoods.
enum DemoData {
    enum OrganisationKind: Sendable {
        /// A social-services hub that refers cases (the PIS "poli di inclusione sociale").
        case referrer
        /// Takes cases in charge, records activations, issues badges, converts credits, grants doti.
        case caseHolder
        /// Offers opportunities in the catalogue (training, health, community resources).
        case provider
    }

    struct Opportunity: Sendable {
        let title: String
        let category: String
        let hours: Int64
        let description: String
    }

    struct BadgeClass: Sendable {
        let slug: String
        let name: String
        let credits: Int64
        let criteria: String
        let validDays: Int64?
    }

    struct Organisation: Sendable {
        let id: String
        let name: String
        let district: String
        let kind: OrganisationKind
        /// Job titles of its staff, one staff member each.
        let staffTitles: [String]
        let opportunities: [Opportunity]
        let badgeClasses: [BadgeClass]
        /// Relative share of the cases it takes in charge (case holders only).
        let caseShare: Int
    }

    struct Merchant: Sendable {
        let slug: String
        let name: String
        let categories: [String]
        let district: String
    }

    static let districts = [
        "aurora", "barriera_di_milano", "borgo_vittoria", "vallette", "san_donato", "centro", "san_salvario",
        "nizza_millefonti", "lingotto", "mirafiori_nord", "mirafiori_sud", "pozzo_strada",
    ]

    /// Spending categories of the policy: the seeds' "doti di inclusione" plus everyday shop categories.
    static let spendingCategories = [
        "food", "rent", "utilities", "school", "childcare", "books", "devices", "digital", "transport", "extracurricular",
        "eye_care", "dental_care", "clothing", "pharmacy", "household", "culture", "sport",
    ]

    /// Dote categories (Case del Quartiere "tipologie di doti"), with a relative weight and an amount range in cents.
    struct DoteKind: Sendable {
        let category: String
        let weight: Int
        let minimumCents: Int64
        let maximumCents: Int64
        /// Paid in one go (a bill, a fee, a visit) rather than spent in several shopping trips.
        let paidAtOnce: Bool
    }

    static let doteKinds: [DoteKind] = [
        DoteKind(category: "food", weight: 30, minimumCents: 5_000, maximumCents: 15_000, paidAtOnce: false),
        DoteKind(category: "rent", weight: 12, minimumCents: 20_000, maximumCents: 45_000, paidAtOnce: true),
        DoteKind(category: "utilities", weight: 14, minimumCents: 8_000, maximumCents: 25_000, paidAtOnce: true),
        DoteKind(category: "school", weight: 8, minimumCents: 5_000, maximumCents: 20_000, paidAtOnce: true),
        DoteKind(category: "books", weight: 6, minimumCents: 4_000, maximumCents: 12_000, paidAtOnce: false),
        DoteKind(category: "transport", weight: 8, minimumCents: 3_800, maximumCents: 11_400, paidAtOnce: false),
        DoteKind(category: "devices", weight: 4, minimumCents: 15_000, maximumCents: 35_000, paidAtOnce: true),
        DoteKind(category: "digital", weight: 3, minimumCents: 1_500, maximumCents: 3_000, paidAtOnce: true),
        DoteKind(category: "childcare", weight: 3, minimumCents: 10_000, maximumCents: 30_000, paidAtOnce: true),
        DoteKind(category: "extracurricular", weight: 4, minimumCents: 5_000, maximumCents: 15_000, paidAtOnce: true),
        DoteKind(category: "eye_care", weight: 4, minimumCents: 10_000, maximumCents: 30_000, paidAtOnce: true),
        DoteKind(category: "dental_care", weight: 4, minimumCents: 15_000, maximumCents: 40_000, paidAtOnce: true),
    ]

    static let organisations: [Organisation] = [
        // The social-services hubs that refer people to the programme.
        Organisation(
            id: "polo-inclusione-nord", name: "Città di Torino — Polo di inclusione sociale Nord", district: "barriera_di_milano",
            kind: .referrer, staffTitles: ["assistente sociale", "assistente sociale"], opportunities: [], badgeClasses: [], caseShare: 0),
        Organisation(
            id: "polo-inclusione-sud", name: "Città di Torino — Polo di inclusione sociale Sud", district: "mirafiori_sud",
            kind: .referrer, staffTitles: ["assistente sociale", "assistente sociale"], opportunities: [], badgeClasses: [], caseShare: 0),
        Organisation(
            id: "polo-inclusione-centro", name: "Città di Torino — Polo di inclusione sociale Centro-Est", district: "san_salvario",
            kind: .referrer, staffTitles: ["assistente sociale", "assistente sociale"], opportunities: [], badgeClasses: [], caseShare: 0),
        Organisation(
            id: "polo-inclusione-ovest", name: "Città di Torino — Polo di inclusione sociale Ovest", district: "san_donato",
            kind: .referrer, staffTitles: ["assistente sociale", "assistente sociale"], opportunities: [], badgeClasses: [], caseShare: 0),

        // PIS: Cooperativa Terra Mia and its partners.
        Organisation(
            id: "coop-terra-mia", name: "Cooperativa Terra Mia", district: "aurora", kind: .caseHolder,
            staffTitles: ["operatrice di accompagnamento", "operatrice di accompagnamento", "coordinatrice PIS"],
            opportunities: [
                Opportunity(title: "Attività culturali e artistiche in piccoli gruppi", category: "culture", hours: 12,
                            description: "Accompagnamento alle opportunità culturali, artistiche e sportive offerte dalla comunità sul territorio."),
                Opportunity(title: "Sportello di ascolto per la genitorialità", category: "family", hours: 6,
                            description: "Sostegno alla conciliazione e alla genitorialità: ascolto e attività formative per genitori e figli."),
                Opportunity(title: "Civica utilità: cura degli spazi comuni", category: "civic_utility", hours: 20,
                            description: "Esperienze di attivazione e civica utilità nella cura degli spazi comuni del quartiere."),
            ],
            badgeClasses: [
                BadgeClass(slug: "attivazione-di-comunita", name: "Attivazione di comunità", credits: 30,
                           criteria: "Almeno 12 ore di attività culturali o di civica utilità certificate dall'operatrice.", validDays: 365),
            ],
            caseShare: 14),
        Organisation(
            id: "coop-liberi-tutti", name: "Cooperativa Liberi Tutti", district: "borgo_vittoria", kind: .caseHolder,
            staffTitles: ["educatore", "educatrice"],
            opportunities: [
                Opportunity(title: "Laboratorio di falegnameria sociale", category: "training", hours: 30,
                            description: "Percorso formativo di affiancamento in un laboratorio di falegnameria."),
                Opportunity(title: "Civica utilità: verde dei giardini di quartiere", category: "civic_utility", hours: 20,
                            description: "Manutenzione leggera del verde pubblico con un tutor."),
                Opportunity(title: "Tirocinio in magazzino e logistica", category: "internship", hours: 120,
                            description: "Tirocinio di inserimento presso un'azienda del territorio."),
            ],
            badgeClasses: [
                BadgeClass(slug: "civica-utilita-20-ore", name: "Civica utilità — 20 ore", credits: 40,
                           criteria: "20 ore di attività di civica utilità, registrate come attivazioni.", validDays: nil),
            ],
            caseShare: 10),
        Organisation(
            id: "coop-terzo-tempo", name: "Cooperativa Terzo Tempo", district: "lingotto", kind: .caseHolder,
            staffTitles: ["operatore sociale", "operatrice sociale"],
            opportunities: [
                Opportunity(title: "Gruppo di cammino e sport per adulti", category: "sport", hours: 10,
                            description: "Attività sportiva di gruppo per rinforzare benessere e relazioni."),
                Opportunity(title: "Tirocinio in ristorazione collettiva", category: "internship", hours: 160,
                            description: "Tirocinio in una cucina collettiva del quartiere."),
                Opportunity(title: "Compagnia agli anziani soli", category: "elderly", hours: 15,
                            description: "Interventi di prossimità con persone anziane sole del quartiere."),
            ],
            badgeClasses: [
                BadgeClass(slug: "prossimita-e-cura", name: "Prossimità e cura", credits: 35,
                           criteria: "Almeno 15 ore di interventi di prossimità verso anziani o famiglie.", validDays: 365),
            ],
            caseShare: 10),

        // Reti delle Opportunità: the "attivatori di snodo".
        Organisation(
            id: "piazza-dei-mestieri", name: "Fondazione Piazza dei Mestieri", district: "san_donato", kind: .caseHolder,
            staffTitles: ["attivatore di snodo", "attivatrice di snodo", "formatore senior"],
            opportunities: [
                Opportunity(title: "Colloquio di ricognizione delle competenze", category: "training", hours: 4,
                            description: "Colloqui di ricognizione delle competenze, di ri-motivazione e di empowerment."),
                Opportunity(title: "Percorso di empowerment", category: "social", hours: 12,
                            description: "Incontri di gruppo per lo sviluppo delle potenzialità personali."),
                Opportunity(title: "Tirocinio in cucina e sala", category: "internship", hours: 200,
                            description: "Tirocinio nel ristorante didattico della Piazza dei Mestieri."),
                Opportunity(title: "Laboratorio di panificazione", category: "training", hours: 40,
                            description: "Corso pratico di panificazione con attestato di frequenza."),
            ],
            badgeClasses: [
                BadgeClass(slug: "tirocinio-primo-modulo", name: "Tirocinio: primo modulo completato", credits: 80,
                           criteria: "Primo modulo di tirocinio completato con valutazione positiva del tutor.", validDays: nil),
                BadgeClass(slug: "empowerment", name: "Empowerment e ri-motivazione", credits: 25,
                           criteria: "Partecipazione ad almeno tre incontri del percorso di empowerment.", validDays: 365),
            ],
            caseShare: 12),

        // Case del Quartiere help desks (sportelli di segretariato sociale), which also grant the doti.
        Organisation(
            id: "sviluppo-san-salvario", name: "Agenzia per lo Sviluppo Locale di San Salvario Onlus", district: "san_salvario",
            kind: .caseHolder, staffTitles: ["operatrice di sportello", "operatore di sportello"],
            opportunities: [
                Opportunity(title: "Sportello di segretariato sociale", category: "social", hours: 2,
                            description: "Ascolto dei bisogni e orientamento ai servizi della Casa del Quartiere di San Salvario."),
                Opportunity(title: "Volontariato alla distribuzione alimentare", category: "volunteering", hours: 8,
                            description: "Turni di volontariato nella distribuzione di beni alimentari."),
                Opportunity(title: "Corso di italiano per adulti", category: "education", hours: 40,
                            description: "Corso di lingua italiana per adulti stranieri, livello A2."),
            ],
            badgeClasses: [
                BadgeClass(slug: "cittadinanza-attiva", name: "Cittadinanza attiva", credits: 30,
                           criteria: "Partecipazione regolare ad attività di volontariato o formazione della Casa.", validDays: 365),
            ],
            caseShare: 9),
        Organisation(
            id: "cascina-roccafranca", name: "Fondazione Cascina Roccafranca", district: "mirafiori_nord", kind: .caseHolder,
            staffTitles: ["operatrice di sportello", "operatore di sportello"],
            opportunities: [
                Opportunity(title: "Orto comunitario della Cascina", category: "civic_utility", hours: 16,
                            description: "Cura dell'orto comunitario insieme ai volontari della Cascina."),
                Opportunity(title: "Laboratorio di cucito e riuso", category: "training", hours: 24,
                            description: "Laboratorio pratico di cucito, riparazione e riuso di abiti."),
                Opportunity(title: "Attività aggregative per anziani", category: "elderly", hours: 10,
                            description: "Pomeriggi di attività con gli anziani del quartiere."),
            ],
            badgeClasses: [
                BadgeClass(slug: "orto-e-ambiente", name: "Orto e ambiente", credits: 30,
                           criteria: "Almeno 16 ore di cura dell'orto comunitario.", validDays: nil),
            ],
            caseShare: 8),
        Organisation(
            id: "comunita-mirafiori", name: "Fondazione della Comunità di Mirafiori onlus", district: "mirafiori_sud",
            kind: .caseHolder, staffTitles: ["operatrice di sportello", "operatore di sportello"],
            opportunities: [
                Opportunity(title: "Cura del parco con la Casa nel Parco", category: "civic_utility", hours: 20,
                            description: "Piccola manutenzione e cura del parco insieme alla Casa nel Parco."),
                Opportunity(title: "Doposcuola per bambini e ragazzi", category: "education", hours: 30,
                            description: "Affiancamento nel doposcuola della Casa nel Parco."),
                Opportunity(title: "Manutenzioni di quartiere", category: "work_placement", hours: 80,
                            description: "Inserimento lavorativo nelle manutenzioni di quartiere."),
            ],
            badgeClasses: [
                BadgeClass(slug: "cura-dei-beni-comuni", name: "Cura dei beni comuni", credits: 35,
                           criteria: "Almeno 20 ore di cura di spazi e beni comuni del quartiere.", validDays: nil),
            ],
            caseShare: 8),
        Organisation(
            id: "casa-delle-rane", name: "La Casa delle Rane onlus", district: "san_donato", kind: .caseHolder,
            staffTitles: ["operatrice di sportello", "operatrice di sportello"],
            opportunities: [
                Opportunity(title: "Laboratori per genitori e figli", category: "family", hours: 8,
                            description: "Laboratori di Più SpazioQuattro per genitori e figli."),
                Opportunity(title: "Gruppo sportivo di quartiere", category: "sport", hours: 12,
                            description: "Attività sportive di quartiere per adulti e ragazzi."),
            ],
            badgeClasses: [
                BadgeClass(slug: "famiglie-in-rete", name: "Famiglie in rete", credits: 25,
                           criteria: "Partecipazione con i figli ad almeno tre laboratori.", validDays: 365),
            ],
            caseShare: 7),
        Organisation(
            id: "lancillotto", name: "Lancillotto Società Cooperativa Sociale", district: "nizza_millefonti", kind: .caseHolder,
            staffTitles: ["operatore di sportello", "operatrice di sportello"],
            opportunities: [
                Opportunity(title: "Ciclofficina sociale al Barrito", category: "training", hours: 20,
                            description: "Riparazione di biciclette in ciclofficina con un meccanico volontario."),
                Opportunity(title: "Attività ludiche con persone con disabilità", category: "disability", hours: 10,
                            description: "Accompagnamento ad attività ludiche e aggregative."),
                Opportunity(title: "Volontariato in biblioteca di quartiere", category: "volunteering", hours: 12,
                            description: "Supporto al prestito e alle attività di lettura."),
            ],
            badgeClasses: [
                BadgeClass(slug: "competenze-pratiche", name: "Competenze pratiche in ciclofficina", credits: 30,
                           criteria: "Almeno 20 ore di ciclofficina con riparazioni completate.", validDays: nil),
            ],
            caseShare: 7),
        Organisation(
            id: "educadora", name: "Associazione Educadora onlus", district: "aurora", kind: .caseHolder,
            staffTitles: ["operatrice di sportello", "educatore"],
            opportunities: [
                Opportunity(title: "Laboratorio teatrale di comunità al Cecchi Point", category: "culture", hours: 16,
                            description: "Laboratorio teatrale aperto agli abitanti del quartiere."),
                Opportunity(title: "Sostegno scolastico ed educativa di strada", category: "education", hours: 20,
                            description: "Affiancamento educativo per ragazzi del quartiere."),
            ],
            badgeClasses: [
                BadgeClass(slug: "teatro-di-comunita", name: "Teatro di comunità", credits: 25,
                           criteria: "Partecipazione al laboratorio fino allo spettacolo finale.", validDays: 365),
            ],
            caseShare: 7),
        Organisation(
            id: "stalker-teatro", name: "Stalker Teatro Società cooperativa", district: "vallette", kind: .caseHolder,
            staffTitles: ["operatore di sportello", "operatrice di sportello"],
            opportunities: [
                Opportunity(title: "Teatro e movimento per adulti", category: "culture", hours: 16,
                            description: "Laboratorio di teatro e movimento alla Casa di Quartiere Vallette."),
                Opportunity(title: "Civica utilità: custodia degli spazi", category: "civic_utility", hours: 24,
                            description: "Accoglienza e custodia degli spazi della Casa di Quartiere."),
                Opportunity(title: "Animazione con persone con disabilità", category: "disability", hours: 12,
                            description: "Attività di animazione in collaborazione con i servizi del territorio."),
            ],
            badgeClasses: [
                BadgeClass(slug: "custodia-e-accoglienza", name: "Custodia e accoglienza", credits: 35,
                           criteria: "Almeno 24 ore di accoglienza e custodia degli spazi.", validDays: nil),
            ],
            caseShare: 8),

        // Partners that offer opportunities and services.
        Organisation(
            id: "rete-case-del-quartiere", name: "Rete Case del Quartiere APS", district: "centro", kind: .provider,
            staffTitles: ["coordinatrice di rete"],
            opportunities: [
                Opportunity(title: "Formazione Cittadini Attivi", category: "training", hours: 16,
                            description: "Percorsi formativi sull'accoglienza e le attività di segretariato sociale."),
                Opportunity(title: "Volontariato nelle Case del Quartiere", category: "volunteering", hours: 10,
                            description: "Volontariato nelle attività di accoglienza delle Case."),
            ],
            badgeClasses: [], caseShare: 0),
        Organisation(
            id: "exar-social-value", name: "EXAR Social Value Solutions Impresa Sociale", district: "centro", kind: .provider,
            staffTitles: ["orientatrice"],
            opportunities: [
                Opportunity(title: "Orientamento di I livello ai servizi al lavoro", category: "training", hours: 12,
                            description: "Moduli di orientamento di primo livello ai servizi al lavoro."),
                Opportunity(title: "Bilancio delle competenze e curriculum", category: "work_placement", hours: 6,
                            description: "Colloqui individuali per il bilancio delle competenze."),
            ],
            badgeClasses: [], caseShare: 0),
        Organisation(
            id: "patchanka", name: "Patchanka società cooperativa sociale", district: "barriera_di_milano", kind: .provider,
            staffTitles: ["orientatore"],
            opportunities: [
                Opportunity(title: "Orientamento al lavoro in gruppo", category: "training", hours: 12,
                            description: "Modulo di gruppo di orientamento ai servizi al lavoro."),
                Opportunity(title: "Tirocinio in pulizie e sanificazione", category: "internship", hours: 120,
                            description: "Tirocinio in servizi di pulizia presso imprese del territorio."),
            ],
            badgeClasses: [], caseShare: 0),
        Organisation(
            id: "asili-notturni", name: "Società per gli Asili Notturni Umberto I OdV", district: "san_salvario", kind: .provider,
            staffTitles: ["coordinatrice sanitaria"],
            opportunities: [
                Opportunity(title: "Prevenzione e salute con i medici volontari", category: "social", hours: 4,
                            description: "Incontri di prevenzione con i medici volontari dell'ambulatorio."),
                Opportunity(title: "Volontariato all'accoglienza", category: "volunteering", hours: 8,
                            description: "Turni di volontariato all'accoglienza."),
            ],
            badgeClasses: [], caseShare: 0),
        Organisation(
            id: "terra-e-pace", name: "Associazione di promozione sociale Terra e Pace", district: "barriera_di_milano", kind: .provider,
            staffTitles: ["mediatrice"],
            opportunities: [
                Opportunity(title: "Madri di Quartiere: mutuo aiuto tra famiglie", category: "family", hours: 10,
                            description: "Gruppo di donne promotrici di inclusione e mutuo aiuto nel quartiere."),
                Opportunity(title: "Mediazione culturale per famiglie", category: "family", hours: 6,
                            description: "Mediazione a famiglie in condizione di vulnerabilità."),
                Opportunity(title: "Sostegno socio-educativo domiciliare", category: "social", hours: 12,
                            description: "Accompagnamento socio-educativo a domicilio."),
            ],
            badgeClasses: [], caseShare: 0),
        Organisation(
            id: "eco-dalle-citta", name: "Associazione Eco dalle città", district: "aurora", kind: .provider,
            staffTitles: ["coordinatore Salvacibo"],
            opportunities: [
                Opportunity(title: "Carovana Salvacibo: recupero eccedenze al mercato", category: "civic_utility", hours: 12,
                            description: "Recupero, distribuzione e valorizzazione di eccedenze alimentari."),
                Opportunity(title: "Pasti sospesi nelle Case del Quartiere", category: "volunteering", hours: 8,
                            description: "Trasformazione delle eccedenze in pasti sospesi con la ristorazione delle Case."),
            ],
            badgeClasses: [], caseShare: 0),
    ]

    static let merchants: [Merchant] = [
        Merchant(slug: "alimentari-da-rosa", name: "Alimentari Da Rosa", categories: ["food", "household"], district: "san_salvario"),
        Merchant(slug: "forno-borgo-dora", name: "Panetteria Forno di Borgo Dora", categories: ["food"], district: "aurora"),
        Merchant(slug: "banco-42-porta-palazzo", name: "Frutta e verdura Banco 42, Porta Palazzo", categories: ["food"], district: "aurora"),
        Merchant(slug: "macelleria-gallo", name: "Macelleria Gallo", categories: ["food"], district: "barriera_di_milano"),
        Merchant(slug: "supermercato-vallette", name: "Supermercato di quartiere Vallette", categories: ["food", "household", "clothing"], district: "vallette"),
        Merchant(slug: "emporio-solidale-mirafiori", name: "Emporio solidale Mirafiori", categories: ["food", "household", "clothing"], district: "mirafiori_sud"),
        Merchant(slug: "minimarket-nizza", name: "Minimarket Nizza", categories: ["food", "household"], district: "nizza_millefonti"),
        Merchant(slug: "alimentari-san-donato", name: "Alimentari San Donato", categories: ["food"], district: "san_donato"),
        Merchant(slug: "banco-madama-cristina", name: "Banco Ferrero, mercato di piazza Madama Cristina", categories: ["food"], district: "san_salvario"),
        Merchant(slug: "drogheria-pozzo-strada", name: "Drogheria Pozzo Strada", categories: ["household", "food"], district: "pozzo_strada"),
        Merchant(slug: "market-borgo-vittoria", name: "Market Borgo Vittoria", categories: ["food", "household"], district: "borgo_vittoria"),
        Merchant(slug: "farmacia-mirafiori-nord", name: "Farmacia Mirafiori Nord", categories: ["pharmacy"], district: "mirafiori_nord"),
        Merchant(slug: "farmacia-aurora", name: "Farmacia Aurora", categories: ["pharmacy"], district: "aurora"),
        Merchant(slug: "farmacia-barriera", name: "Farmacia Barriera", categories: ["pharmacy"], district: "barriera_di_milano"),
        Merchant(slug: "ottica-mirafiori", name: "Ottica Mirafiori", categories: ["eye_care"], district: "mirafiori_sud"),
        Merchant(slug: "asili-notturni-oculistica", name: "Ambulatorio oculistico Asili Notturni Umberto I", categories: ["eye_care"], district: "san_salvario"),
        Merchant(slug: "asili-notturni-odontoiatria", name: "Ambulatorio odontoiatrico Asili Notturni Umberto I", categories: ["dental_care"], district: "san_salvario"),
        Merchant(slug: "studio-dentistico-lingotto", name: "Studio dentistico Lingotto", categories: ["dental_care"], district: "lingotto"),
        Merchant(slug: "libreria-ponte-dora", name: "Libreria Il Ponte sulla Dora", categories: ["books", "school"], district: "aurora"),
        Merchant(slug: "cartoleria-borgo-vittoria", name: "Cartoleria Borgo Vittoria", categories: ["books", "school"], district: "borgo_vittoria"),
        Merchant(slug: "cartolibreria-san-donato", name: "Cartolibreria San Donato", categories: ["books", "school"], district: "san_donato"),
        Merchant(slug: "informatica-solidale", name: "Informatica Solidale", categories: ["devices", "digital"], district: "centro"),
        Merchant(slug: "punto-spid-centro", name: "Punto SPID e servizi digitali", categories: ["digital"], district: "centro"),
        Merchant(slug: "telefonia-barriera", name: "Telefonia Barriera", categories: ["devices", "digital"], district: "barriera_di_milano"),
        Merchant(slug: "abbonamenti-porta-nuova", name: "Rivendita abbonamenti trasporto pubblico Porta Nuova", categories: ["transport"], district: "centro"),
        Merchant(slug: "abbonamenti-lingotto", name: "Rivendita biglietti e abbonamenti Lingotto", categories: ["transport"], district: "lingotto"),
        Merchant(slug: "agenzia-sociale-locazione", name: "Agenzia sociale per la locazione", categories: ["rent"], district: "centro"),
        Merchant(slug: "cooperativa-edilizia-vallette", name: "Cooperativa edilizia Vallette — canoni", categories: ["rent"], district: "vallette"),
        Merchant(slug: "sportello-utenze-san-donato", name: "Sportello utenze luce e gas San Donato", categories: ["utilities"], district: "san_donato"),
        Merchant(slug: "sportello-servizio-idrico", name: "Sportello pagamenti servizio idrico", categories: ["utilities"], district: "centro"),
        Merchant(slug: "ristorazione-scolastica", name: "Ristorazione scolastica — sportello pagamenti", categories: ["school"], district: "centro"),
        Merchant(slug: "nido-il-girotondo", name: "Asilo nido cooperativo Il Girotondo", categories: ["childcare"], district: "borgo_vittoria"),
        Merchant(slug: "centro-estivo-mirafiori", name: "Centro estivo e doposcuola Mirafiori", categories: ["extracurricular", "childcare"], district: "mirafiori_nord"),
        Merchant(slug: "remix-abbigliamento", name: "Abbigliamento usato Remix", categories: ["clothing"], district: "nizza_millefonti"),
        Merchant(slug: "calzature-vallette", name: "Scarpe e abbigliamento Vallette", categories: ["clothing"], district: "vallette"),
        Merchant(slug: "palestra-popolare-san-salvario", name: "Palestra popolare San Salvario", categories: ["sport", "extracurricular"], district: "san_salvario"),
        Merchant(slug: "cinema-di-quartiere", name: "Cinema di quartiere Lingotto", categories: ["culture"], district: "lingotto"),
        Merchant(slug: "ferramenta-pozzo-strada", name: "Casalinghi e ferramenta Pozzo Strada", categories: ["household"], district: "pozzo_strada"),
    ]

    static let femaleNames = [
        "Giulia", "Francesca", "Chiara", "Sara", "Elena", "Valentina", "Martina", "Paola", "Anna", "Laura", "Fatima",
        "Amina", "Ioana", "Mariana", "Blessing", "Jiayi", "Rosa", "Teresa", "Silvia", "Nadia", "Khadija", "Elisa",
    ]
    static let maleNames = [
        "Marco", "Luca", "Andrea", "Giuseppe", "Matteo", "Davide", "Paolo", "Stefano", "Mohamed", "Youssef", "Ion",
        "Chukwuma", "Omar", "Alessandro", "Roberto", "Salvatore", "Vasile", "Karim", "Domenico", "Franco",
    ]
    static let surnames = [
        "Rossi", "Ferrero", "Russo", "Bianchi", "Romano", "Gallo", "Costa", "Bruno", "Ricci", "Marino", "Greco",
        "Esposito", "Colombo", "Conti", "De Luca", "Giordano", "Mancini", "Rizzo", "Lombardi", "Barbieri", "Fontana",
        "Caruso", "Ferrara", "Bertola", "Cravero", "Bosio", "El Amrani", "Popescu", "Okafor", "Benali", "Chen", "Diallo",
        "Sanna", "Piras", "Morra", "Ghione",
    ]
    static let streets = [
        "via Nizza", "corso Giulio Cesare", "via Cibrario", "corso Vercelli", "via Madama Cristina", "corso Traiano",
        "via Monginevro", "corso Grosseto", "via Livorno", "corso Taranto", "via Artom", "via Pietro Cossa",
        "via Chiesa della Salute", "corso Racconigi", "via Saccarelli", "via Baltea",
    ]
    /// Why a hub refers someone (the seeds' "situazioni temporanee di gravità").
    static let referralReasons = [
        "perdita del lavoro", "sfratto esecutivo", "situazione debitoria", "nucleo monoparentale con minori",
        "percettore di Reddito di Cittadinanza", "isolamento sociale", "malattia grave in famiglia",
        "utenze insolute", "ricerca di un primo impiego dopo lunga disoccupazione",
    ]
    static let noteTexts = [
        "Colloquio di empowerment: buona partecipazione, da rinforzare l'autostima.",
        "Colloquio di monitoraggio: frequenza regolare alle attività concordate.",
        "Segnalata difficoltà nel pagamento delle utenze; valutare una dote.",
        "Incontro con l'assistente sociale di riferimento al tavolo delle opportunità.",
        "Rinviato l'appuntamento per motivi di salute; ricontattare la prossima settimana.",
        "Aggiornata la tessera delle opportunità con i nuovi interessi espressi.",
    ]
    static let goalTexts: [String: String] = [
        "work_placement": "inserimento lavorativo", "internship": "tirocinio", "civic_utility": "attività di civica utilità",
        "training": "percorso formativo", "culture": "attività culturali", "sport": "attività sportive",
        "volunteering": "volontariato", "education": "formazione e studio", "disability": "attività con persone con disabilità",
        "social": "accompagnamento sociale", "elderly": "prossimità con gli anziani", "family": "sostegno alla famiglia",
    ]
}
