"""extract_reply: the debtor's own words out of reply bodies as English, German and Danish
mail clients write them (Gmail, Apple Mail, Outlook desktop/web/mobile, Thunderbird, Yahoo,
GMX/web.de, Mail for Windows), plus the edge cases where cutting would lose the debtor's words.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest

from hub.inbound.reply_text import ReplyText, extract_reply


@dataclass(frozen=True)
class Case:
    id: str
    text: str
    reply: str
    #: the exact signature, or None for "no signature"
    signature: str | None = None
    #: the first line of the removed quoted part, or None for "nothing quoted"
    quoted_first: str | None = None
    rules: tuple[str, ...] = ()
    kept_everything: bool = False
    html: bool = False
    #: a line that must be in the quoted part (checks a header or body went with the quote)
    quoted_has: tuple[str, ...] = field(default=())


EN = [
    Case(
        "en-gmail-top-post",
        "Hi,\n\nI paid the £240 this morning by bank transfer.\n\nThanks,\nJohn\n\n"
        "On Mon, 3 Mar 2026 at 10:12, Acme Collections <collections@acme.example> wrote:\n\n"
        "> Dear Mr Smith,\n>\n> Your balance of £240.00 is overdue.\n>\n> Kind regards\n"
        "> Credit Control\n",
        reply="Hi,\n\nI paid the £240 this morning by bank transfer.",
        signature="Thanks,\nJohn",
        quoted_first="On Mon, 3 Mar 2026 at 10:12, Acme Collections <collections@acme.example> "
        "wrote:",
        rules=("attribution", "quote_marker", "closing"),
        quoted_has=("> Credit Control",),
    ),
    Case(
        "en-gmail-attribution-wrapped",
        "I will pay on Friday.\n\nOn Mon, Mar 3, 2026 at 10:12 AM Acme Collections <\n"
        "collections@acme.example> wrote:\n\n> Dear Mr Smith,\n> please pay £80.\n",
        reply="I will pay on Friday.",
        quoted_first="On Mon, Mar 3, 2026 at 10:12 AM Acme Collections <",
        rules=("attribution",),
    ),
    Case(
        "en-apple-mail-iphone",
        "Can I pay in three instalments?\n\nSent from my iPhone\n\n"
        "> On 3 Mar 2026, at 10:12, Acme Collections <collections@acme.example> wrote:\n"
        ">\n> Dear Ms Jones,\n> your account is overdue.\n",
        reply="Can I pay in three instalments?",
        signature="Sent from my iPhone",
        quoted_first="> On 3 Mar 2026, at 10:12, Acme Collections <collections@acme.example> "
        "wrote:",
        rules=("quote_marker", "mobile_footer"),
    ),
    Case(
        "en-outlook-desktop-original-message",
        "Hello,\n\nPlease find the remittance attached.\n\nBest regards\nSarah Miller\n"
        "Finance Manager | Miller Joinery Ltd\nTel: +44 20 7946 0958\n\n"
        "-----Original Message-----\nFrom: Acme Collections <collections@acme.example>\n"
        "Sent: Monday, March 3, 2026 10:12 AM\nTo: Sarah Miller <sarah@millerjoinery.example>\n"
        "Subject: Overdue invoice INV-2231\n\nDear Ms Miller,\n\nInvoice INV-2231 is overdue.\n",
        reply="Hello,\n\nPlease find the remittance attached.",
        signature="Best regards\nSarah Miller\nFinance Manager | Miller Joinery Ltd\n"
        "Tel: +44 20 7946 0958",
        quoted_first="-----Original Message-----",
        rules=("separator", "unquoted_history", "closing"),
        quoted_has=("Invoice INV-2231 is overdue.",),
    ),
    Case(
        "en-outlook-web-underscores-ios",
        "We dispute this charge, the goods were never delivered.\n\nGet Outlook for iOS\n"
        "________________________________\nFrom: Acme Collections <collections@acme.example>\n"
        "Sent: Monday, March 3, 2026 10:12:44 AM\nTo: tom@example.com <tom@example.com>\n"
        "Subject: Final notice\n\nDear customer,\nplease pay £95 within 7 days.\n",
        reply="We dispute this charge, the goods were never delivered.",
        signature="Get Outlook for iOS",
        quoted_first="________________________________",
        rules=("separator", "mobile_footer"),
        quoted_has=("please pay £95 within 7 days.",),
    ),
    Case(
        "en-thunderbird-bottom-post-delimiter",
        "On 03/03/2026 10:12, Acme Collections wrote:\n> Dear Mr Brown,\n> please pay EUR 120.\n\n"
        "I paid this on 28 February, see the attached receipt.\n\n-- \nPeter Brown\n",
        reply="I paid this on 28 February, see the attached receipt.",
        signature="--\nPeter Brown",
        quoted_first="On 03/03/2026 10:12, Acme Collections wrote:",
        rules=("attribution", "text_below_quote", "signature_delimiter"),
    ),
    Case(
        "en-interleaved",
        "On Mon, 3 Mar 2026 at 10:12, Acme <c@acme.example> wrote:\n> Your balance is £300.\n\n"
        "No, it is £150. I paid half in January.\n\n> Please pay by 10 March.\n\n"
        "I can pay the rest on 31 March.\n\nRegards\nAnn\n",
        reply="No, it is £150. I paid half in January.\n\nI can pay the rest on 31 March.",
        signature="Regards\nAnn",
        quoted_first="On Mon, 3 Mar 2026 at 10:12, Acme <c@acme.example> wrote:",
        rules=("attribution", "interleaved", "closing"),
        quoted_has=("> Please pay by 10 March.",),
    ),
    Case(
        "en-yahoo-unquoted-original",
        "I never ordered anything from this company.\n\nSent from Yahoo Mail on Android\n\n"
        "On Monday, 3 March 2026, 10:12:05 GMT, Acme Collections <collections@acme.example> "
        "wrote:\n\nDear customer,\nplease pay £45.\n",
        reply="I never ordered anything from this company.",
        signature="Sent from Yahoo Mail on Android",
        quoted_first="On Monday, 3 March 2026, 10:12:05 GMT, Acme Collections "
        "<collections@acme.example> wrote:",
        rules=("attribution", "unquoted_history", "mobile_footer"),
    ),
    Case(
        "en-gmail-forward",
        "Please see below, this was paid already.\n\n---------- Forwarded message ---------\n"
        "From: Acme Collections <collections@acme.example>\nDate: Mon, 3 Mar 2026 at 10:12\n"
        "Subject: Reminder\nTo: <me@example.com>\n\nDear customer, please pay.\n",
        reply="Please see below, this was paid already.",
        quoted_first="---------- Forwarded message ---------",
        rules=("separator",),
    ),
    Case(
        "en-apple-forward",
        "FYI - my lawyer will contact you.\n\nBegin forwarded message:\n\n"
        "From: Acme Collections <collections@acme.example>\nSubject: Reminder\n"
        "Date: 3 March 2026 at 10:12:00 GMT\nTo: me@example.com\n\nDear customer, please pay.\n",
        reply="FYI - my lawyer will contact you.",
        quoted_first="Begin forwarded message:",
        rules=("separator",),
    ),
    Case(
        "en-outlook-android",
        "Paid today.\n\nSent from Outlook for Android\n\n"
        "From: Acme Collections <collections@acme.example>\n"
        "Sent: Monday, March 3, 2026 10:12:44 AM\nTo: me@example.com\nSubject: Reminder\n\n"
        "Dear customer\n",
        reply="Paid today.",
        signature="Sent from Outlook for Android",
        quoted_first="From: Acme Collections <collections@acme.example>",
        rules=("outlook_header", "mobile_footer"),
    ),
    Case(
        "en-mail-for-windows",
        "I will pay 50 per month from April.\n\nSent from Mail for Windows\n\n"
        "From: Acme Collections\nSent: 03 March 2026 10:12\nTo: Dave Hill\nSubject: Arrears\n\n"
        "Dear Mr Hill,\n",
        reply="I will pay 50 per month from April.",
        signature="Sent from Mail for Windows",
        quoted_first="From: Acme Collections",
        rules=("outlook_header", "mobile_footer"),
    ),
    Case(
        "en-delimiter-contact-lines",
        "Payment will be made on 15 March.\n\n-- \nJames Carter\nCarter Plumbing Ltd\n"
        "07700 900123\nwww.carterplumbing.example\n",
        reply="Payment will be made on 15 March.",
        signature="--\nJames Carter\nCarter Plumbing Ltd\n07700 900123\nwww.carterplumbing.example",
        rules=("signature_delimiter",),
    ),
    Case(
        "en-signature-without-delimiter",
        "Payment will be made on 15 March.\n\nJames Carter\nCarter Plumbing Ltd\n"
        "Tel. 07700 900123\n",
        reply="Payment will be made on 15 March.",
        signature="James Carter\nCarter Plumbing Ltd\nTel. 07700 900123",
        rules=("contact_block",),
    ),
    Case(
        "en-disclaimer-after-separator",
        "We will pay the invoice this week.\n\nKind regards\nLaura Bell\nAccounts Payable\n\n"
        "________________________________\nThis email and any attachments are confidential and "
        "intended solely for the addressee. If you have received it in error, please notify "
        "the sender and delete it.\n",
        reply="We will pay the invoice this week.",
        signature="Kind regards\nLaura Bell\nAccounts Payable\n________________________________\n"
        "This email and any attachments are confidential and intended solely for the addressee. "
        "If you have received it in error, please notify the sender and delete it.",
        rules=("disclaimer", "closing"),
    ),
    Case(
        "en-html-outlook-header-one-line",
        "I have already paid this.\n\n\n\nFrom: Acme Collections <collections@acme.example> "
        "Sent: Monday, March 3, 2026 10:12 AM To: me@example.com Subject: Reminder\n\n\n\n"
        "Dear customer, please pay.\n",
        reply="I have already paid this.",
        quoted_first="From: Acme Collections <collections@acme.example> Sent: Monday, March 3, "
        "2026 10:12 AM To: me@example.com Subject: Reminder",
        rules=("outlook_header",),
        html=True,
    ),
    Case(
        "en-html-attribution-joined-with-quote",
        "Please call me on Friday.\n\nOn Mon, 3 Mar 2026 at 10:12, Acme <c@acme.example> wrote: "
        "Dear customer, your balance is overdue.\n",
        reply="Please call me on Friday.",
        rules=("attribution",),
        quoted_first="On Mon, 3 Mar 2026 at 10:12, Acme <c@acme.example> wrote: Dear customer, "
        "your balance is overdue.",
        html=True,
    ),
    Case(
        "en-thanks-name-footer-yahoo",
        "Hi\n\nI paid the full balance of £1,120 on 23 June. Please stop the late fee.\n\n"
        "Thanks\nHannah\n\nSent from Yahoo Mail on Android\n",
        reply="Hi\n\nI paid the full balance of £1,120 on 23 June. Please stop the late fee.",
        signature="Thanks\nHannah\nSent from Yahoo Mail on Android",
        rules=("mobile_footer", "closing"),
    ),
]

DE = [
    Case(
        "de-gmail",
        "Hallo,\n\nich überweise die 129 € am Montag.\n\nViele Grüße\nAnna Schmidt\n\n"
        "Am Mo., 3. März 2026 um 10:12 Uhr schrieb Inkasso Nord <service@inkasso-nord.example>:\n\n"
        "> Sehr geehrte Frau Schmidt,\n> die Rechnung ist fällig.\n",
        reply="Hallo,\n\nich überweise die 129 € am Montag.",
        signature="Viele Grüße\nAnna Schmidt",
        quoted_first="Am Mo., 3. März 2026 um 10:12 Uhr schrieb Inkasso Nord "
        "<service@inkasso-nord.example>:",
        rules=("attribution", "closing"),
    ),
    Case(
        "de-apple-ios",
        "Ich zahle am Freitag.\n\nVon meinem iPhone gesendet\n\n"
        "> Am 03.03.2026 um 10:12 schrieb Inkasso Nord <service@inkasso-nord.example>:\n>\n"
        "> Sehr geehrter Herr Weber,\n> bitte zahlen Sie.\n",
        reply="Ich zahle am Freitag.",
        signature="Von meinem iPhone gesendet",
        quoted_first="> Am 03.03.2026 um 10:12 schrieb Inkasso Nord "
        "<service@inkasso-nord.example>:",
        rules=("quote_marker", "mobile_footer"),
    ),
    Case(
        "de-thunderbird-bottom-post",
        "Am 03.03.2026 um 10:12 schrieb Inkasso Nord:\n> Sehr geehrter Herr Weber,\n"
        "> bitte zahlen Sie 80 €.\n\nDas habe ich am 1. März bezahlt.\n\nMfG\nKlaus Weber\n",
        reply="Das habe ich am 1. März bezahlt.",
        signature="MfG\nKlaus Weber",
        quoted_first="Am 03.03.2026 um 10:12 schrieb Inkasso Nord:",
        rules=("attribution", "text_below_quote", "closing"),
    ),
    Case(
        "de-outlook-urspruengliche-nachricht",
        "Sehr geehrte Damen und Herren,\n\nanbei der Zahlungsnachweis.\n\n"
        "Mit freundlichen Grüßen\nMax Mustermann\n\n-----Ursprüngliche Nachricht-----\n"
        "Von: Inkasso Nord <service@inkasso-nord.example>\nGesendet: Montag, 3. März 2026 10:12\n"
        "An: Max Mustermann <max@example.de>\nBetreff: Zahlungserinnerung 2026-4411\n\n"
        "Sehr geehrter Herr Mustermann,\nleider ist die Rechnung noch offen.\n",
        reply="Sehr geehrte Damen und Herren,\n\nanbei der Zahlungsnachweis.",
        signature="Mit freundlichen Grüßen\nMax Mustermann",
        quoted_first="-----Ursprüngliche Nachricht-----",
        rules=("separator", "unquoted_history", "closing"),
        quoted_has=("leider ist die Rechnung noch offen.",),
    ),
    Case(
        "de-outlook-web-underscores",
        "Die Ware kam beschädigt an, ich zahle nicht.\n\n________________________________\n"
        "Von: Inkasso Nord <service@inkasso-nord.example>\nGesendet: Montag, 3. März 2026 10:12\n"
        "An: julia@example.de\nBetreff: Mahnung\n\nSehr geehrte Frau Koch,\n",
        reply="Die Ware kam beschädigt an, ich zahle nicht.",
        quoted_first="________________________________",
        rules=("separator",),
    ),
    Case(
        "de-gmx-header-starts-with-gesendet",
        "Ich bitte um Ratenzahlung, 50 € im Monat.\n\nGruß Jürgen\n\n\n"
        "Gesendet: Montag, 03. März 2026 um 10:12 Uhr\n"
        'Von: "Inkasso Nord" <service@inkasso-nord.example>\nAn: juergen@gmx.example\n'
        "Betreff: Mahnung\nSehr geehrter Herr Lang,\nbitte zahlen Sie.\n",
        reply="Ich bitte um Ratenzahlung, 50 € im Monat.",
        signature="Gruß Jürgen",
        quoted_first="Gesendet: Montag, 03. März 2026 um 10:12 Uhr",
        rules=("outlook_header", "closing"),
    ),
    Case(
        "de-thunderbird-forward",
        "Siehe unten, ist längst bezahlt.\n\n-------- Weitergeleitete Nachricht --------\n"
        "Betreff: \tMahnung\nDatum: \tMon, 3 Mar 2026 10:12:00 +0100\n"
        "Von: \tInkasso Nord <service@inkasso-nord.example>\nAn: \tpeter@example.de\n\n"
        "Sehr geehrter Herr Vogt,\n",
        reply="Siehe unten, ist längst bezahlt.",
        quoted_first="-------- Weitergeleitete Nachricht --------",
        rules=("separator",),
    ),
    Case(
        "de-lotus-schrieb-am",
        "Wir zahlen bis 31.03.\n\nInkasso Nord <service@inkasso-nord.example> schrieb am "
        "03.03.2026 10:12:00:\n\n> Sehr geehrte Damen und Herren,\n> die Forderung ist offen.\n",
        reply="Wir zahlen bis 31.03.",
        quoted_first="Inkasso Nord <service@inkasso-nord.example> schrieb am 03.03.2026 10:12:00:",
        rules=("attribution",),
    ),
    Case(
        "de-short-schrieb-before-quote",
        "Nein, das stimmt nicht. Ich habe im Januar bezahlt.\n\nInkasso Nord schrieb:\n"
        "> Sie schulden uns 300 €.\n",
        reply="Nein, das stimmt nicht. Ich habe im Januar bezahlt.",
        quoted_first="Inkasso Nord schrieb:",
        rules=("attribution",),
    ),
    Case(
        "de-outlook-android",
        "Zahlung erfolgt morgen.\n\nGesendet von Outlook für Android\n"
        "________________________________\nVon: Inkasso Nord <service@inkasso-nord.example>\n"
        "Gesendet: Dienstag, 4. März 2026 08:00:12\nAn: tim@example.de\nBetreff: Mahnung\n",
        reply="Zahlung erfolgt morgen.",
        signature="Gesendet von Outlook für Android",
        quoted_first="________________________________",
        rules=("separator", "mobile_footer"),
    ),
    Case(
        "de-delimiter-company",
        "Guten Morgen, Montag wird überwiesen.\n\n-- \nFrank Heller\nHeller Haustechnik GmbH\n"
        "Hauptstraße 5, 70173 Stuttgart\nTel. 0711 334455\n",
        reply="Guten Morgen, Montag wird überwiesen.",
        signature="--\nFrank Heller\nHeller Haustechnik GmbH\nHauptstraße 5, 70173 Stuttgart\n"
        "Tel. 0711 334455",
        rules=("signature_delimiter",),
    ),
    Case(
        "de-inline-closing",
        "Guten Morgen, ich biete ab 15. Juli 150 € im Monat an. Gruß Timo",
        reply="Guten Morgen, ich biete ab 15. Juli 150 € im Monat an.",
        signature="Gruß Timo",
        rules=("closing",),
    ),
    Case(
        "de-disclaimer-im-auftrag",
        "Die Rechnung wird diese Woche beglichen.\n\nMit freundlichen Grüßen\ni. A. Melanie Voß\n"
        "Buchhaltung\nVoß Medizintechnik GmbH\n\nDiese E-Mail enthält vertrauliche Informationen. "
        "Wenn Sie nicht der richtige Empfänger sind, informieren Sie bitte sofort den Absender.\n",
        reply="Die Rechnung wird diese Woche beglichen.",
        signature="Mit freundlichen Grüßen\ni. A. Melanie Voß\nBuchhaltung\n"
        "Voß Medizintechnik GmbH\nDiese E-Mail enthält vertrauliche Informationen. "
        "Wenn Sie nicht der richtige Empfänger sind, informieren Sie bitte sofort den Absender.",
        rules=("disclaimer", "closing"),
    ),
    Case(
        "de-interleaved",
        "> Bitte zahlen Sie bis zum 10.03.\nDas geht nicht, ich bin bis 20.03. im Krankenhaus.\n"
        "> Andernfalls übergeben wir die Sache einem Anwalt.\nBitte nicht, ich zahle sicher.\n\n"
        "LG Sabine\n",
        reply="Das geht nicht, ich bin bis 20.03. im Krankenhaus.\n\n"
        "Bitte nicht, ich zahle sicher.",
        signature="LG Sabine",
        quoted_first="> Bitte zahlen Sie bis zum 10.03.",
        rules=("quote_marker", "interleaved", "closing"),
    ),
    Case(
        "de-swiss-iphone",
        "Grüezi Frau Stucki\n\nGerne begleiche ich die CHF 1'250.– in fünf Raten.\n\n"
        "Freundliche Grüsse\nRahel Steiner\n\nVon meinem iPhone gesendet\n\n"
        "> Am 03.09.2025 um 14:11 schrieb Inkasso Ost AG:\n> Sehr geehrte Frau Steiner\n",
        reply="Grüezi Frau Stucki\n\nGerne begleiche ich die CHF 1'250.– in fünf Raten.",
        signature="Freundliche Grüsse\nRahel Steiner\nVon meinem iPhone gesendet",
        quoted_first="> Am 03.09.2025 um 14:11 schrieb Inkasso Ost AG:",
        rules=("quote_marker", "mobile_footer", "closing"),
    ),
    Case(
        "de-webde-app-wrapped-attribution",
        "Hab ich doch schon bezahlt!\n\nGesendet mit der WEB.DE Mail App\n\n"
        'Am 03.03.2026 um 10:12 schrieb "Inkasso Nord"\n<service@inkasso-nord.example>:\n'
        "> Sehr geehrter Herr Koch,\n> leider ist die Forderung noch offen.\n",
        reply="Hab ich doch schon bezahlt!",
        signature="Gesendet mit der WEB.DE Mail App",
        quoted_first='Am 03.03.2026 um 10:12 schrieb "Inkasso Nord"',
        rules=("attribution", "mobile_footer"),
    ),
    Case(
        "de-danke-und-gruss",
        "Hallo,\n\ndie 360 überweise ich am Donnerstag.\n\nDanke und viele Grüße\nMiriam Scholz\n",
        reply="Hallo,\n\ndie 360 überweise ich am Donnerstag.",
        signature="Danke und viele Grüße\nMiriam Scholz",
        rules=("closing",),
    ),
]

DA = [
    Case(
        "da-gmail",
        "Hej\n\nJeg betaler de 1.920 kr. på fredag.\n\nVenlig hilsen\nMette Jensen\n\n"
        "Den man. 3. mar. 2026 kl. 10.12 skrev Inkasso Danmark <post@inkasso.example>:\n\n"
        "> Kære Mette Jensen\n> Vi har ikke modtaget betaling.\n",
        reply="Hej\n\nJeg betaler de 1.920 kr. på fredag.",
        signature="Venlig hilsen\nMette Jensen",
        quoted_first="Den man. 3. mar. 2026 kl. 10.12 skrev Inkasso Danmark "
        "<post@inkasso.example>:",
        rules=("attribution", "closing"),
    ),
    Case(
        "da-apple-iphone",
        "Kan jeg betale i tre rater?\n\nSendt fra min iPhone\n\n"
        "> Den 3. mar. 2026 kl. 10.12 skrev Inkasso Danmark <post@inkasso.example>:\n>\n"
        "> Kære Søren\n> Betal venligst 900 kr.\n",
        reply="Kan jeg betale i tre rater?",
        signature="Sendt fra min iPhone",
        quoted_first="> Den 3. mar. 2026 kl. 10.12 skrev Inkasso Danmark <post@inkasso.example>:",
        rules=("quote_marker", "mobile_footer"),
    ),
    Case(
        "da-outlook-oprindelig-meddelelse",
        "Jeg har betalt den 1. marts.\n\nMed venlig hilsen\nLars Nielsen\nNielsen VVS ApS\n"
        "Tlf. 20 11 22 33\n\n-----Oprindelig meddelelse-----\n"
        "Fra: Inkasso Danmark <post@inkasso.example>\nSendt: 3. marts 2026 10:12\n"
        "Til: Lars Nielsen <lars@nielsenvvs.example>\nEmne: Rykker – faktura 2026-115\n\n"
        "Kære Lars Nielsen\nVi har ikke modtaget betaling.\n",
        reply="Jeg har betalt den 1. marts.",
        signature="Med venlig hilsen\nLars Nielsen\nNielsen VVS ApS\nTlf. 20 11 22 33",
        quoted_first="-----Oprindelig meddelelse-----",
        rules=("separator", "unquoted_history", "closing"),
    ),
    Case(
        "da-outlook-web-hent-outlook",
        "Varen er aldrig leveret.\n\nHent Outlook til iOS\n________________________________\n"
        "Fra: Inkasso Danmark <post@inkasso.example>\nSendt: mandag 3. marts 2026 10:12\n"
        "Til: anne@example.dk\nEmne: Påmindelse\n\nKære Anne\n",
        reply="Varen er aldrig leveret.",
        signature="Hent Outlook til iOS",
        quoted_first="________________________________",
        rules=("separator", "mobile_footer"),
    ),
    Case(
        "da-d-dato-skrev",
        "Jeg betaler sidst i måneden.\n\nd. 03/03/2026 skrev Inkasso Danmark "
        "<post@inkasso.example>:\n> Kære kunde\n> Betal venligst 500 kr.\n",
        reply="Jeg betaler sidst i måneden.",
        quoted_first="d. 03/03/2026 skrev Inkasso Danmark <post@inkasso.example>:",
        rules=("attribution",),
    ),
    Case(
        "da-thunderbird-bottom-post",
        "Den 03-03-2026 kl. 10:12 skrev Inkasso Danmark:\n> Kære Jens\n> Betal venligst 780 kr.\n\n"
        "Det er betalt i går.\n\nMvh\nJens\n",
        reply="Det er betalt i går.",
        signature="Mvh\nJens",
        quoted_first="Den 03-03-2026 kl. 10:12 skrev Inkasso Danmark:",
        rules=("attribution", "text_below_quote", "closing"),
    ),
    Case(
        "da-mail-til-windows",
        "Jeg betaler sidst i måneden. Hilsen Signe\n\nSendt fra Mail til Windows\n\n"
        "Fra: Inkasso Danmark\nSendt: 3. marts 2026 10:12\nTil: signe@example.dk\nEmne: Rykker\n",
        reply="Jeg betaler sidst i måneden.",
        signature="Hilsen Signe\nSendt fra Mail til Windows",
        quoted_first="Fra: Inkasso Danmark",
        rules=("outlook_header", "mobile_footer", "closing"),
    ),
    Case(
        "da-inline-footer",
        "Jeg kan betale 1450 d. 28/8 og 1450 d. 11/9. Sendt fra min iPhone",
        reply="Jeg kan betale 1450 d. 28/8 og 1450 d. 11/9.",
        signature="Sendt fra min iPhone",
        rules=("mobile_footer",),
    ),
    Case(
        "da-thunderbird-forward",
        "Se nedenfor, den er betalt.\n\n-------- Videresendt meddelelse --------\n"
        "Emne: \tRykker\nDato: \tMon, 3 Mar 2026 10:12:00 +0100\n"
        "Fra: \tInkasso Danmark <post@inkasso.example>\nTil: \tjens@example.dk\n\nKære Jens\n",
        reply="Se nedenfor, den er betalt.",
        quoted_first="-------- Videresendt meddelelse --------",
        rules=("separator",),
    ),
    Case(
        "da-apple-forward",
        "Til orientering.\n\nStart på videresendt besked:\n\n"
        "Fra: Inkasso Danmark <post@inkasso.example>\nEmne: Rykker\n"
        "Dato: 3. marts 2026 kl. 10.12.00 CET\nTil: jens@example.dk\n\nKære Jens\n",
        reply="Til orientering.",
        quoted_first="Start på videresendt besked:",
        rules=("separator",),
    ),
    Case(
        "da-interleaved",
        "> Vi har ikke modtaget betaling for faktura 2026-115.\n"
        "Den er betalt den 1. marts, se kvittering.\n> Beløbet er 1.250,00 kr.\n"
        "Nej, det var 1.050 kr. efter rabat.\n\nMvh Ole\n",
        reply="Den er betalt den 1. marts, se kvittering.\n\nNej, det var 1.050 kr. efter rabat.",
        signature="Mvh Ole",
        quoted_first="> Vi har ikke modtaget betaling for faktura 2026-115.",
        rules=("quote_marker", "interleaved", "closing"),
    ),
    Case(
        "da-delimiter-no-space",
        "Jeg betaler 1.420 kr. fredag.\n--\nKristian Bøgh\nFrivillig, Røde Kors Genbrug\n",
        reply="Jeg betaler 1.420 kr. fredag.",
        signature="--\nKristian Bøgh\nFrivillig, Røde Kors Genbrug",
        rules=("signature_delimiter",),
    ),
    Case(
        "da-disclaimer",
        "Vi betaler fakturaen inden fredag.\n\nMed venlig hilsen\nPer Kold\nKold Murer ApS\n\n"
        "Denne e-mail kan indeholde fortrolige oplysninger. Hvis du ikke er den rette modtager, "
        "bedes du slette den og give afsenderen besked.\n",
        reply="Vi betaler fakturaen inden fredag.",
        signature="Med venlig hilsen\nPer Kold\nKold Murer ApS\nDenne e-mail kan indeholde "
        "fortrolige oplysninger. Hvis du ikke er den rette modtager, bedes du slette den og give "
        "afsenderen besked.",
        rules=("disclaimer", "closing"),
    ),
    Case(
        "da-tak-in-text-kept",
        "Hej\nTak for brevet. Jeg betaler 500 kr. den 1. april\nog resten i maj.\n\n"
        "Venlig hilsen\nMette\n",
        reply="Hej\nTak for brevet. Jeg betaler 500 kr. den 1. april\nog resten i maj.",
        signature="Venlig hilsen\nMette",
        rules=("closing",),
    ),
    Case(
        "da-inline-mvh-gmail",
        "Hej. Vi har aldrig fået de gardiner, der er faktureret.\n\nMvh. Anna Bruun\n\n"
        "Den tir. 3. mar. 2026 kl. 10.00 skrev Opkrævning <opkraevning@inkasso.example>:\n"
        "> Kære Anna Bruun, vi har ikke modtaget din betaling.\n",
        reply="Hej. Vi har aldrig fået de gardiner, der er faktureret.",
        signature="Mvh. Anna Bruun",
        quoted_first="Den tir. 3. mar. 2026 kl. 10.00 skrev Opkrævning "
        "<opkraevning@inkasso.example>:",
        rules=("attribution", "closing"),
    ),
    Case(
        "da-bilingual-closing",
        "Hi,\n\nSorry for the late reply. I will pay the 4.200 kr. on Friday.\n\n"
        "Best regards / Med venlig hilsen\nMikkel Sørensen\n\n"
        "Den 10.02.2026 kl. 08.31 skrev Inkasso <inkasso@example.dk>:\n> Kære kunde\n",
        reply="Hi,\n\nSorry for the late reply. I will pay the 4.200 kr. on Friday.",
        signature="Best regards / Med venlig hilsen\nMikkel Sørensen",
        quoted_first="Den 10.02.2026 kl. 08.31 skrev Inkasso <inkasso@example.dk>:",
        rules=("attribution", "closing"),
    ),
    Case(
        "da-slash-name-english-outlook",
        "Hej, jeg kan betale 850 kr. om måneden fra den 30. januar.\n\n/Rasmus\n\n"
        "-----Original Message-----\nFrom: Inkasso Nord <no-reply@inkassonord.example>\n"
        "Sent: 14 January 2026 08:00\nSubject: Påkrav SAG-2026-2490\n",
        reply="Hej, jeg kan betale 850 kr. om måneden fra den 30. januar.",
        signature="/Rasmus",
        quoted_first="-----Original Message-----",
        rules=("separator", "name"),
    ),
    Case(
        "da-firm-after-name-inline",
        "Hej, vi betaler 3.300 € senest fredag den 5. december. Mvh Birgitte, Lindholm Yachts",
        reply="Hej, vi betaler 3.300 € senest fredag den 5. december.",
        signature="Mvh Birgitte, Lindholm Yachts",
        rules=("closing",),
    ),
]

EDGE = [
    Case(
        "edge-nothing-quoted",
        "I will pay on Friday.",
        reply="I will pay on Friday.",
        kept_everything=True,
    ),
    Case(
        "edge-only-a-quote",
        "> Dear customer,\n> please pay 300 EUR.\n",
        reply="> Dear customer,\n> please pay 300 EUR.",
        rules=("quote_marker", "kept_everything"),
        kept_everything=True,
    ),
    Case(
        "edge-top-posted-forward-only",
        "---------- Forwarded message ---------\nFrom: Acme <c@acme.example>\n"
        "Date: Mon, 3 Mar 2026 at 10:12\nSubject: Reminder\nTo: <me@example.com>\n\n"
        "Dear customer, please pay.\n",
        reply="---------- Forwarded message ---------\nFrom: Acme <c@acme.example>\n"
        "Date: Mon, 3 Mar 2026 at 10:12\nSubject: Reminder\nTo: <me@example.com>\n\n"
        "Dear customer, please pay.",
        rules=("separator", "kept_everything"),
        kept_everything=True,
    ),
    Case(
        "edge-only-attribution-and-quote",
        "Am 03.03.2026 um 10:12 schrieb Inkasso Nord <service@inkasso-nord.example>:\n"
        "> Bitte zahlen Sie.\n",
        reply="Am 03.03.2026 um 10:12 schrieb Inkasso Nord <service@inkasso-nord.example>:\n"
        "> Bitte zahlen Sie.",
        rules=("attribution", "kept_everything"),
        kept_everything=True,
    ),
    Case(
        "edge-gt-amount-in-sentence",
        "I can pay\n> 100 EUR\nper month if that is ok.",
        reply="I can pay\n> 100 EUR\nper month if that is ok.",
        rules=("not_a_quote",),
        kept_everything=True,
    ),
    Case(
        "edge-gt-amount-lone-line",
        "My income is small.\n> 100 EUR a month is too much for me.",
        reply="My income is small.\n> 100 EUR a month is too much for me.",
        rules=("not_a_quote",),
        kept_everything=True,
    ),
    Case(
        "edge-gt-inside-line",
        "Payments of > 100 EUR a month are not possible for me.",
        reply="Payments of > 100 EUR a month are not possible for me.",
        kept_everything=True,
    ),
    Case(
        "edge-bottom-posting",
        "> Dear Ms Fox,\n> your balance is EUR 210.\n\nI sent it yesterday, reference 4471.\n",
        reply="I sent it yesterday, reference 4471.",
        quoted_first="> Dear Ms Fox,",
        rules=("quote_marker", "text_below_quote"),
    ),
    Case(
        "edge-name-that-looks-like-a-closing",
        "I paid on Monday.\n\nBest regards\nFrank Best\n",
        reply="I paid on Monday.",
        signature="Best regards\nFrank Best",
        rules=("closing",),
    ),
    Case(
        "edge-closing-word-starting-a-sentence",
        "Regards from Spain, I will pay when I am back on 3 April.",
        reply="Regards from Spain, I will pay when I am back on 3 April.",
        kept_everything=True,
    ),
    Case(
        "edge-gruesse-sentence-then-text",
        "Grüße aus dem Urlaub! Ich zahle nach meiner Rückkehr am 12.05.",
        reply="Grüße aus dem Urlaub! Ich zahle nach meiner Rückkehr am 12.05.",
        kept_everything=True,
    ),
    Case(
        "edge-danke-not-a-name",
        "Ich überweise morgen. Danke! Bis Freitag",
        reply="Ich überweise morgen. Danke! Bis Freitag",
        kept_everything=True,
    ),
    Case(
        "edge-ps-after-closing-keeps-all",
        "I will pay on Friday.\n\nBest regards\nJohn\n\nP.S. My new address is 12 High Street, "
        "Leeds.",
        reply="I will pay on Friday.\n\nBest regards\nJohn\n\nP.S. My new address is 12 High "
        "Street, Leeds.",
        kept_everything=True,
    ),
    Case(
        "edge-hyphen-list-kept",
        "I can pay as follows:\n- 100 EUR on 1 April\n- 100 EUR on 1 May\n\nThanks\nJohn",
        reply="I can pay as follows:\n- 100 EUR on 1 April\n- 100 EUR on 1 May",
        signature="Thanks\nJohn",
        rules=("closing",),
    ),
    Case(
        "edge-only-closing",
        "Thanks!\nJohn",
        reply="Thanks!\nJohn",
        rules=("signature_kept",),
        kept_everything=True,
    ),
    Case(
        "edge-danke-and-footer",
        "Danke\n\nSent from my iPhone",
        reply="Danke",
        signature="Sent from my iPhone",
        rules=("mobile_footer", "signature_kept"),
    ),
    Case(
        "edge-debtor-writes-skrev-with-date",
        "Hej\nDen 3. marts skrev jeg til jer:\nJeg har betalt, se kvitteringen.",
        reply="Hej\nDen 3. marts skrev jeg til jer:\nJeg har betalt, se kvitteringen.",
        kept_everything=True,
    ),
    Case(
        "edge-crlf-and-nbsp",
        "I paid\u00a0today.\r\n\r\nKind regards\r\nJo Lee\r\n",
        reply="I paid today.",
        signature="Kind regards\nJo Lee",
        rules=("closing",),
    ),
    Case(
        "edge-closing-like-first-line",
        "Mange tak. Modtaget.\n\nVenlig hilsen\nElsebeth\nSendt fra min iPhone",
        reply="Mange tak. Modtaget.",
        signature="Venlig hilsen\nElsebeth\nSendt fra min iPhone",
        rules=("mobile_footer", "closing"),
    ),
    Case("edge-empty", "  \n\n", reply="", kept_everything=True),
]

CASES = EN + DE + DA + EDGE


def _words(text: str) -> Counter[str]:
    return Counter(re.findall(r"\w+", text))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_extract(case: Case) -> None:
    result = extract_reply(case.text, html=case.html)
    assert isinstance(result, ReplyText)
    assert result.reply == case.reply
    assert result.signature == (case.signature or "")
    if case.quoted_first is None:
        assert result.quoted == ""
    else:
        assert result.quoted.split("\n")[0] == case.quoted_first
    for line in case.quoted_has:
        assert line in result.quoted.split("\n")
    fired = [hit.rule for hit in result.rules]
    for rule in case.rules:
        assert rule in fired, f"{rule} did not fire: {result.rules}"
    assert result.kept_everything is case.kept_everything


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_no_word_is_lost(case: Case) -> None:
    """Every word of the body is in exactly one of reply, quoted and signature."""
    result = extract_reply(case.text, html=case.html)
    if result.kept_everything:
        assert _words(result.reply) == _words(case.text)
        return
    parts = _words(result.reply) + _words(result.quoted) + _words(result.signature)
    assert parts == _words(case.text)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_reply_is_never_empty_when_the_body_has_words(case: Case) -> None:
    result = extract_reply(case.text, html=case.html)
    if re.search(r"\w", case.text):
        assert re.search(r"\w", result.reply)


def test_each_language_has_fifteen_cases() -> None:
    assert min(len(EN), len(DE), len(DA)) >= 15


def test_rules_say_what_matched() -> None:
    result = extract_reply(DA[0].text)
    attribution = next(hit for hit in result.rules if hit.rule == "attribution")
    assert attribution.matched.startswith("Den man. 3. mar. 2026 kl. 10.12 skrev")
    closing = next(hit for hit in result.rules if hit.rule == "closing")
    assert closing.matched == "Venlig hilsen"


def test_result_is_frozen() -> None:
    result = extract_reply("I will pay.")
    with pytest.raises(AttributeError):
        result.reply = "x"  # type: ignore[misc]


PATHOLOGICAL = {
    "long-plain-letter": "\n".join(
        f"Line {i} of a long letter about the invoice" for i in range(10_000)
    ),
    "closings-in-one-line": "Gruß. " * 20_000 + "Mvh Anna",
    "closing-lines": "Gruß\n" * 20_000,
    "thanks-and-names": "Ok. " + "Danke, Nicole. " * 10_000,
    "footer-lines": "Sent from my iPhone\n" * 20_000,
    "disclaimer-paragraphs": "This email is confidential.\n\n" * 10_000,
    "name-lines": "Anna Berg\n" * 20_000,
    "attribution-starts": "\n".join(f"On Monday I paid {i}" for i in range(20_000)),
    "quote-blocks": "\n".join(f"> line {i}" if i % 3 else f"answer {i}." for i in range(30_000)),
    "one-long-gt-line": ">" * 100_000,
}


@pytest.mark.parametrize("text", PATHOLOGICAL.values(), ids=PATHOLOGICAL.keys())
def test_pathological_bodies_are_fast(text: str) -> None:
    """No pattern backtracks or rescans without bound: 100-450 kB of junk in well under 2 s."""
    start = time.perf_counter()
    result = extract_reply(text)
    assert time.perf_counter() - start < 2.0
    assert result.reply.strip()
    assert len(result.rules) <= 25


def test_many_quoted_blocks_are_counted_in_one_rule() -> None:
    result = extract_reply(PATHOLOGICAL["quote-blocks"])
    blocks = [hit for hit in result.rules if hit.rule == "quote_marker"]
    assert len(blocks) == 21
    assert blocks[-1].matched == "9980 more quoted blocks"
