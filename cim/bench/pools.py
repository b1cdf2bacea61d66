"""Value pools for seeding benchmark customers: names, domains and phone ranges by country.

Name pools are ordered most common first. The seeder draws half the surnames
from them, skewed so the commonest is 2-3% of a country (as Smith is in the
UK, García in Spain), and half from a long tail of compound surnames built
from `surname_parts`, so that, as in a real customer base, most surnames are
rare and a search word does not match a tenth of all customers. Accented and
multi-word names are deliberate: they are what folding and phonetic search
must cope with.
"""

# Turkish names need the dotless i (U+0131); it is what the folding must handle, not a typo.
# ruff: noqa: RUF001

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CountryPool:
    code: str  # ISO 3166-1 alpha-2
    weight: int  # share of customers, relative to the other countries
    language: str  # a code from settings.LANGUAGES
    currency: str
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    company_words: tuple[str, ...]
    company_suffixes: tuple[str, ...]
    email_domains: tuple[str, ...]
    # (E.164 prefix, digits after it): every such number is valid for
    # phonenumbers, so the national-format search finds the stored number.
    phone_ranges: tuple[tuple[str, int], ...]
    # (stems, endings): the long tail of rarer surnames, stem + ending.
    surname_parts: tuple[tuple[str, ...], tuple[str, ...]]


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


ENGLISH = (
    _names(
        "Ash, Brad, Brom, Cald, Craw, Dun, Fair, Hart, Kings, Lang, Mar, Nor, Pem, Red, "
        "Rock, Sal, Stan, Thorn, Wad, Whit, Hol, Ather, Blen, Chad, Dray"
    ),
    _names("ford, ley, ton, wood, field, well, worth, ham, bury, wick, combe, more, by, dale"),
)
IRISH = (
    _names("Mc, O', Mac"),
    _names(
        "Ardle, Bride, Cormack, Dermott, Evoy, Fadden, Gettigan, Hugh, Loughlin, Manus, "
        "Namara, Sweeney, Tiernan, Kiernan, Grath, Guinness"
    ),
)
GERMAN = (
    _names(
        "Ahl, Berg, Eich, Feld, Gold, Hahn, Kirch, Lind, Mohr, Ober, Rein, Rosen, Schön, "
        "Stein, Wald, Wein, Zell, Brück, Kling, Mühl, Groß, Lieb"
    ),
    _names("mann, berger, hauser, meier, huber, bach, thaler, inger, hofer, stätter, ke, rich"),
)
FRENCH = (
    _names("Beau, Bel, Bon, Char, Dela, Des, Font, Gra, Lam, Mont, Per, Ray, Roche, Vau"),
    _names("champ, court, fort, lieu, mont, val, noir, ville, pré, bois, lac, mar, tier"),
)
IBERIAN = (
    _names("Alba, Bel, Cas, Fon, Gal, Mar, Mon, Ol, Pala, Ri, Sal, Val, Var, Villa"),
    _names("cázar, tán, tero, daña, vez, lado, rejo, ueña, rrubia, verde, nueva, longa"),
)
ITALIAN = (
    _names("Bel, Bor, Cal, Cas, Fer, Lom, Mar, Mor, Pal, Ros, San, Ter, Val, Ves"),
    _names("lini, doni, tucci, etti, ari, one, ello, uzzi, ati, ino, acchi, esi"),
)
DUTCH = (
    _names("van der, van de, de, ter, van"),
    _names(
        "Hoeven, Wal, Veen, Linden, Kamp, Horst, Brink, Laan, Dijkstra, Heuvel, Weide, "
        "Molen, Graaf, Beek, Meulen, Zanden"
    ),
)
NORDIC = (
    _names("Berg, Dal, Fjeld, Holm, Lund, Sand, Skov, Strand, Vik, Ås, Øst, Nør, Bjør, Lille"),
    _names("gård, strøm, lund, vik, berg, mark, holt, haug, by, sæter, borg, näs, qvist"),
)
POLISH = (
    _names("Bor, Dąb, Gór, Kras, Lip, Mal, Now, Ost, Piąt, Sob, Wol, Zaj, Jabł, Czer"),
    _names("owski, ewski, ecki, icki, czak, czyk, iak, ek, ik, owicz, iński, yński"),
)
TURKISH = (
    _names("Ak, Al, Bay, Demir, Er, Gök, Kara, Kurt, Öz, Sarı, Taş, Uy, Yıl, Ay"),
    _names("soy, han, kaya, taş, bulut, oğlu, er, can, dağ, tekin, türk, gül"),
)


COUNTRIES: tuple[CountryPool, ...] = (
    CountryPool(
        code="GB",
        weight=28,
        language="en-gb",
        currency="GBP",
        first_names=_names(
            "Oliver, Amelia, George, Olivia, Harry, Isla, Jack, Emily, John, Sophie, Thomas, "
            "Jessica, James, Charlotte, William, Grace, Daniel, Chloe, Joseph, Lucy, Samuel, "
            "Ellie, Matthew, Hannah, Benjamin, Zoë, Rhys, Siân, Callum, Aoife, Niamh, Gareth, "
            "Eilidh, Mohammed, Priya, Arjun, Fatima, Ryan, Megan, Lewis"
        ),
        last_names=_names(
            "Smith, Jones, Taylor, Brown, Williams, Wilson, Johnson, Davies, Robinson, Wright, "
            "Thompson, Evans, Walker, White, Roberts, Green, Hall, Wood, Jackson, Clarke, "
            "Patel, Khan, Hughes, Edwards, Turner, Lewis, Harris, Martin, Cooper, Hill, Ward, "
            "Morris, Moore, Clark, Lee, King, Baker, Harrison, Morgan, Allen, O'Brien, "
            "MacDonald, Fitzgerald, Ahmed, Singh, Thomson-Reid"
        ),
        company_words=_names("Logistics, Engineering, Holdings, Consulting, Trading, Foods"),
        company_suffixes=_names("Ltd, plc, LLP, & Sons Ltd"),
        email_domains=_names("gmail.com, outlook.com, btinternet.com, yahoo.co.uk, sky.com"),
        phone_ranges=(("+44740", 7), ("+44207", 7), ("+44795", 7)),
        surname_parts=ENGLISH,
    ),
    CountryPool(
        code="IE",
        weight=3,
        language="en",
        currency="EUR",
        first_names=_names(
            "Seán, Aoife, Conor, Saoirse, Ciarán, Niamh, Darragh, Siobhán, Pádraig, Róisín, "
            "Eoin, Caoimhe, Oisín, Orla, Cian"
        ),
        last_names=_names(
            "Murphy, Kelly, O'Sullivan, Walsh, Smith, O'Brien, Byrne, Ryan, O'Connor, "
            "O'Neill, Ó Briain, McCarthy, Gallagher, Doherty, Kennedy"
        ),
        company_words=_names("Holdings, Farms, Distribution"),
        company_suffixes=_names("Ltd, DAC, Teoranta"),
        email_domains=_names("gmail.com, eircom.net, outlook.ie"),
        phone_ranges=(("+35387", 7),),
        surname_parts=IRISH,
    ),
    CountryPool(
        code="US",
        weight=14,
        language="en",
        currency="USD",
        first_names=_names(
            "James, Mary, Robert, Patricia, John, Jennifer, Michael, Linda, David, Elizabeth, "
            "William, Barbara, Richard, Susan, Joseph, Jessica, Christopher, Sarah, Daniel, "
            "Karen, Matthew, Nancy, Anthony, Lisa, Mark, Betty, José, María, Jon, Tyrone, "
            "DeShawn, Nguyen, Mei"
        ),
        last_names=_names(
            "Smith, Johnson, Williams, Brown, Jones, Garcia, Miller, Davis, Rodriguez, "
            "Martinez, Hernández, Lopez, Gonzalez, Wilson, Anderson, Thomas, Taylor, Moore, "
            "Jackson, Martin, Lee, Perez, Thompson, White, Harris, Sanchez, Clark, Ramirez, "
            "Lewis, Robinson, Walker, Young, Nguyen, Kim, O'Connor, Smyth"
        ),
        company_words=_names("Industries, Capital, Systems, Partners, Foods, Logistics"),
        company_suffixes=_names("Inc., LLC, Corp."),
        email_domains=_names("gmail.com, yahoo.com, outlook.com, aol.com, icloud.com"),
        phone_ranges=(("+14152", 6), ("+12125", 6)),
        surname_parts=ENGLISH,
    ),
    CountryPool(
        code="DE",
        weight=12,
        language="de",
        currency="EUR",
        first_names=_names(
            "Lukas, Anna, Maximilian, Sophie, Jonas, Marie, Felix, Lena, Leon, Hannah, Paul, "
            "Emma, Jürgen, Jörg, Günter, Ute, Björn, Sören, Käthe, Uwe, Dörte, Matthias, "
            "Katharina, Stefan, Sabine"
        ),
        last_names=_names(
            "Müller, Schmidt, Schneider, Fischer, Weber, Meyer, Wagner, Becker, Schulz, "
            "Hoffmann, Schäfer, Koch, Bauer, Richter, Klein, Wolf, Schröder, Neumann, "
            "Schwarz, Zimmermann, Braun, Krüger, Hofmann, Hartmann, Lange, Özdemir, "
            "von Hohenberg, Groß, Weiß, Jäger"
        ),
        company_words=_names("Maschinenbau, Logistik, Handel, Software, Bau"),
        company_suffixes=_names("GmbH, AG, GmbH & Co. KG, KG"),
        email_domains=_names("web.de, gmx.de, t-online.de, gmail.com, posteo.de"),
        phone_ranges=(("+49151", 8), ("+49170", 8)),
        surname_parts=GERMAN,
    ),
    CountryPool(
        code="FR",
        weight=10,
        language="fr",
        currency="EUR",
        first_names=_names(
            "Gabriel, Louise, Léo, Jade, Raphaël, Chloé, Arthur, Léa, Louis, Emma, Jules, "
            "Inès, Hugo, Zoé, François, Hélène, Jérôme, Céline, Benoît, Élodie, Anaïs, "
            "Jean-Luc, Marie-Claire, Noël, Gaëlle"
        ),
        last_names=_names(
            "Martin, Bernard, Dubois, Thomas, Robert, Richard, Petit, Durand, Leroy, Moreau, "
            "Simon, Laurent, Lefèvre, Michel, Garcia, David, Bertrand, Roux, Vincent, "
            "Fournier, Lefebvre, Girard, Bonnet, Dupont, Lambert, Fontaine, Rousseau, "
            "Mercier, Boucher, Gauthier, Chevalier, Da Silva, Lemaître"
        ),
        company_words=_names("Transports, Conseil, Industries, Distribution, Immobilier"),
        company_suffixes=_names("SARL, SA, SAS, EURL"),
        email_domains=_names("orange.fr, free.fr, gmail.com, laposte.net, sfr.fr"),
        phone_ranges=(("+3361", 7), ("+3362", 7)),
        surname_parts=FRENCH,
    ),
    CountryPool(
        code="ES",
        weight=8,
        language="es",
        currency="EUR",
        first_names=_names(
            "José, María, Antonio, Carmen, Manuel, Ana, Francisco, Isabel, Javier, Lucía, "
            "Jesús, Pilar, Sergio, Paula, Álvaro, Begoña, Íñigo, Nuria, Iñaki, Ángela, "
            "José Luis, María José"
        ),
        last_names=_names(
            "García, Rodríguez, González, Fernández, López, Martínez, Sánchez, Pérez, "
            "Gómez, Martín, Jiménez, Ruiz, Hernández, Díaz, Moreno, Muñoz, Álvarez, Romero, "
            "Alonso, Gutiérrez, Navarro, Torres, Domínguez, Núñez, Peña, Ibáñez"
        ),
        company_words=_names("Construcciones, Distribuciones, Alimentación, Hermanos"),
        company_suffixes=_names("S.L., S.A., S.L.U."),
        email_domains=_names("gmail.com, hotmail.es, telefonica.net, yahoo.es"),
        phone_ranges=(("+346", 8),),
        surname_parts=IBERIAN,
    ),
    CountryPool(
        code="IT",
        weight=6,
        language="it",
        currency="EUR",
        first_names=_names(
            "Giuseppe, Maria, Giovanni, Anna, Antonio, Giulia, Francesco, Francesca, Mario, "
            "Chiara, Luca, Sara, Niccolò, Martina, Nicolò, Alessandro, Federica"
        ),
        last_names=_names(
            "Rossi, Russo, Ferrari, Esposito, Bianchi, Romano, Colombo, Ricci, Marino, "
            "Greco, Bruno, Gallo, Conti, De Luca, Mancini, Costa, Giordano, Rizzo, "
            "Lombardi, Moretti, D'Angelo, Dell'Orto"
        ),
        company_words=_names("Costruzioni, Trasporti, Alimentari, Meccanica"),
        company_suffixes=_names("S.r.l., S.p.A., S.n.c."),
        email_domains=_names("libero.it, gmail.com, virgilio.it, tiscali.it"),
        phone_ranges=(("+39347", 7), ("+39333", 7)),
        surname_parts=ITALIAN,
    ),
    CountryPool(
        code="PT",
        weight=2,
        language="pt",
        currency="EUR",
        first_names=_names(
            "João, Maria, José, Ana, António, Inês, Gonçalo, Beatriz, Tomás, Leonor"
        ),
        last_names=_names(
            "Silva, Santos, Ferreira, Pereira, Oliveira, Costa, Rodrigues, Martins, Jesus, "
            "Sousa, Gonçalves, Magalhães, Conceição"
        ),
        company_words=_names("Transportes, Construções, Comércio"),
        company_suffixes=_names("Lda., S.A."),
        email_domains=_names("sapo.pt, gmail.com, hotmail.com"),
        phone_ranges=(("+35191", 7), ("+35193", 7)),
        surname_parts=IBERIAN,
    ),
    CountryPool(
        code="NL",
        weight=4,
        language="nl",
        currency="EUR",
        first_names=_names(
            "Daan, Emma, Sem, Julia, Lucas, Mila, Levi, Tess, Finn, Sophie, Joost, Anouk, "
            "Bram, Floor, Sjoerd, Fenna"
        ),
        last_names=_names(
            "de Jong, Jansen, de Vries, van den Berg, van Dijk, Bakker, Janssen, Visser, "
            "Smit, Meijer, de Boer, Mulder, de Groot, Bos, Vos, Peters, Hendriks, "
            "van der Meer, van 't Hof, IJzerman"
        ),
        company_words=_names("Techniek, Logistiek, Handel, Bouw"),
        company_suffixes=_names("B.V., N.V., V.O.F."),
        email_domains=_names("ziggo.nl, kpnmail.nl, gmail.com, hotmail.nl"),
        phone_ranges=(("+3161", 7), ("+3162", 7)),
        surname_parts=DUTCH,
    ),
    CountryPool(
        code="DK",
        weight=3,
        language="da",
        currency="DKK",
        first_names=_names(
            "Søren, Mette, Jens, Kirsten, Lars, Hanne, Niels, Anne, Rasmus, Sofie, Bjørn, "
            "Åse, Frederik, Ida, Mads"
        ),
        last_names=_names(
            "Nielsen, Jensen, Hansen, Pedersen, Andersen, Christensen, Larsen, Sørensen, "
            "Rasmussen, Jørgensen, Petersen, Madsen, Kristensen, Møller, Østergaard, "
            "Kjærgaard, Dahl"
        ),
        company_words=_names("Logistik, Byg, Handel, Rådgivning"),
        company_suffixes=_names("ApS, A/S, I/S"),
        email_domains=_names("mail.dk, gmail.com, jubii.dk, outlook.dk"),
        phone_ranges=(("+4526", 6), ("+4528", 6)),
        surname_parts=NORDIC,
    ),
    CountryPool(
        code="NO",
        weight=2,
        language="nb",
        currency="NOK",
        first_names=_names(
            "Ola, Kari, Håkon, Ingrid, Bjørn, Solveig, Øystein, Sigrid, Jørgen, Åsa"
        ),
        last_names=_names(
            "Hansen, Johansen, Olsen, Larsen, Andersen, Pedersen, Nilsen, Kristiansen, "
            "Jensen, Karlsen, Haugen, Bakken, Solberg, Østby, Håland"
        ),
        company_words=_names("Shipping, Fisk, Bygg"),
        company_suffixes=_names("AS, ASA"),
        email_domains=_names("online.no, gmail.com, hotmail.no"),
        phone_ranges=(("+4741", 6), ("+4792", 6)),
        surname_parts=NORDIC,
    ),
    CountryPool(
        code="SE",
        weight=3,
        language="sv",
        currency="SEK",
        first_names=_names(
            "Erik, Anna, Lars, Maria, Karl, Eva, Anders, Karin, Johan, Kristina, Björn, "
            "Åsa, Göran, Märta, Örjan"
        ),
        last_names=_names(
            "Andersson, Johansson, Karlsson, Nilsson, Eriksson, Larsson, Olsson, Persson, "
            "Svensson, Gustafsson, Pettersson, Jonsson, Lindström, Åberg, Öberg, Ström, "
            "Bergström, Sjöberg"
        ),
        company_words=_names("Bygg, Transport, Konsult, Handel"),
        company_suffixes=_names("AB, HB"),
        email_domains=_names("telia.com, gmail.com, hotmail.se, bredband.net"),
        phone_ranges=(("+4670", 7), ("+4673", 7)),
        surname_parts=NORDIC,
    ),
    CountryPool(
        code="PL",
        weight=4,
        language="pl",
        currency="PLN",
        first_names=_names(
            "Piotr, Anna, Krzysztof, Maria, Andrzej, Katarzyna, Tomasz, Małgorzata, Paweł, "
            "Agnieszka, Łukasz, Magdalena, Michał, Joanna, Wojciech, Żaneta"
        ),
        last_names=_names(
            "Nowak, Kowalski, Wiśniewski, Wójcik, Kowalczyk, Kamiński, Lewandowski, "
            "Zieliński, Szymański, Woźniak, Dąbrowski, Kozłowski, Jankowski, Mazur, "
            "Krawczyk, Piotrowski, Grabowski, Nowakowski, Pawłowski, Michalski"
        ),
        company_words=_names("Budownictwo, Transport, Handel, Usługi"),
        company_suffixes=_names("Sp. z o.o., S.A., s.c."),
        email_domains=_names("wp.pl, onet.pl, gmail.com, interia.pl, o2.pl"),
        phone_ranges=(("+48501", 6), ("+48601", 6)),
        surname_parts=POLISH,
    ),
    CountryPool(
        code="TR",
        weight=2,
        language="tr",
        currency="TRY",
        first_names=_names(
            "Mehmet, Ayşe, Mustafa, Fatma, Ahmet, Emine, Ali, Hatice, Hüseyin, Zeynep, "
            "Çağla, Gökhan, Şükrü, Özge, İbrahim"
        ),
        last_names=_names(
            "Yılmaz, Kaya, Demir, Şahin, Çelik, Yıldız, Yıldırım, Öztürk, Aydın, Özdemir, "
            "Arslan, Doğan, Kılıç, Aslan, Çetin, Koç"
        ),
        company_words=_names("İnşaat, Tekstil, Gıda, Lojistik"),
        company_suffixes=_names("A.Ş., Ltd. Şti."),
        email_domains=_names("gmail.com, hotmail.com, yandex.com.tr"),
        phone_ranges=(("+90532", 7), ("+90542", 7)),
        surname_parts=TURKISH,
    ),
)

INTERACTION_KINDS: tuple[tuple[str, int, tuple[str, ...], bool, str, tuple[str, ...]], ...] = (
    # (kind, weight, channels, has an amount, reference prefix, summaries)
    (
        "purchase",
        7,
        ("web", "store"),
        True,
        "INV-",
        ("Online order", "In-store purchase", "Subscription renewal", "Gift card", "Upgrade"),
    ),
    (
        "order",
        3,
        ("web", "phone", "email"),
        True,
        "ORD-",
        ("Order placed", "Order amended", "Back-order", "Order cancelled"),
    ),
    (
        "support_ticket",
        3,
        ("email", "web", "phone"),
        False,
        "TCK-",
        (
            "Delivery late",
            "Invoice query",
            "Password reset",
            "Damaged item",
            "Refund request",
            "Address change",
        ),
    ),
    (
        "call",
        3,
        ("phone",),
        False,
        "",
        ("Inbound call", "Callback", "Renewal reminder call", "Complaint call"),
    ),
    ("visit", 2, ("branch", "field", "store"), False, "", ("Branch visit", "Site visit")),
    (
        "note",
        2,
        ("internal",),
        False,
        "",
        ("Prefers email", "Moved house", "VIP at events", "Asked about the loyalty scheme"),
    ),
)
