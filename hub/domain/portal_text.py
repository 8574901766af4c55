"""Every text of the debtor portal in English, German (Sie) and Danish: the message catalogue.

Pages look texts up by key (``t("pay.title")``); a missing key is an error in the tests, never
an English fallback on a German page. ``{name}`` placeholders are filled with ``str.format``.
Dates and amounts are not here: Babel formats them in the debtor's locale
(:data:`hub.outbound.render.LOCALES`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from hub.domain.mail import LANGUAGES, Language

#: key -> (en, de, da)
_TEXTS: Mapping[str, tuple[str, str, str]] = {
    "portal.title": ("Your case", "Ihr Vorgang", "Din sag"),
    "lang.label": ("Language", "Sprache", "Sprog"),
    # the gate
    "gate.intro": (
        "To protect your data, please confirm that it is you before we show your case.",
        "Zum Schutz Ihrer Daten bestätigen Sie bitte zuerst, dass Sie es sind. Danach zeigen wir "
        "Ihnen Ihren Vorgang.",
        "For at beskytte dine oplysninger skal du først bekræfte, at det er dig. Derefter viser "
        "vi dig din sag.",
    ),
    "gate.code.title": ("Code by email", "Code per E-Mail", "Kode pr. e-mail"),
    "gate.code.text": (
        "We send a one-time code to the email address we have on file for you.",
        "Wir senden einen einmaligen Code an die E-Mail-Adresse, die uns von Ihnen vorliegt.",
        "Vi sender en engangskode til den e-mailadresse, vi har registreret for dig.",
    ),
    "gate.code.send": ("Send me a code", "Code zusenden", "Send mig en kode"),
    "gate.code.sent": (
        "If we have an email address for you, a code is on its way. It is valid for {minutes} "
        "minutes.",
        "Falls uns eine E-Mail-Adresse von Ihnen vorliegt, ist ein Code unterwegs. Er gilt "
        "{minutes} Minuten.",
        "Hvis vi har en e-mailadresse på dig, er en kode på vej. Den gælder i {minutes} minutter.",
    ),
    "gate.code.label": ("Code (6 digits)", "Code (6 Ziffern)", "Kode (6 cifre)"),
    "gate.code.submit": ("Open my case", "Vorgang öffnen", "Åbn min sag"),
    "gate.postal.title": (
        "Reference and postal code",
        "Aktenzeichen und Postleitzahl",
        "Sagsnummer og postnummer",
    ),
    "gate.postal.text": (
        "Or enter the case reference from our letter and your postal code.",
        "Oder geben Sie das Aktenzeichen aus unserem Schreiben und Ihre Postleitzahl ein.",
        "Eller indtast sagsnummeret fra vores brev og dit postnummer.",
    ),
    "gate.reference": ("Case reference", "Aktenzeichen", "Sagsnummer"),
    "gate.postal": ("Postal code", "Postleitzahl", "Postnummer"),
    "gate.denied": (
        "These details do not open a case, or the code is no longer valid.",
        "Mit diesen Angaben lässt sich kein Vorgang öffnen, oder der Code ist nicht mehr gültig.",
        "Med disse oplysninger kan ingen sag åbnes, eller koden er ikke længere gyldig.",
    ),
    "gate.locked": (
        "Too many failed attempts. Please try again later.",
        "Zu viele Fehlversuche. Bitte versuchen Sie es später noch einmal.",
        "For mange mislykkede forsøg. Prøv igen senere.",
    ),
    "invalid.title": ("Link not valid", "Link ungültig", "Linket er ugyldigt"),
    "invalid.text": (
        "This link is not valid. Please use the link from our most recent email.",
        "Dieser Link ist ungültig. Bitte verwenden Sie den Link aus unserer letzten E-Mail.",
        "Dette link er ugyldigt. Brug venligst linket fra vores seneste e-mail.",
    ),
    "expired.title": ("Session ended", "Sitzung beendet", "Sessionen er udløbet"),
    "expired.text": (
        "Your session has ended. Please open the link from our email again.",
        "Ihre Sitzung ist beendet. Bitte öffnen Sie den Link aus unserer E-Mail erneut.",
        "Din session er udløbet. Åbn venligst linket fra vores e-mail igen.",
    ),
    "logout": ("Log out", "Abmelden", "Log ud"),
    # the claim
    "claim.title": ("Your claim", "Ihre Forderung", "Dit krav"),
    "claim.reference": ("Reference", "Aktenzeichen", "Sagsnummer"),
    "claim.creditor": ("Creditor", "Gläubiger", "Kreditor"),
    "claim.name": ("Name", "Name", "Navn"),
    "claim.amount": ("Claim", "Forderung", "Krav"),
    "claim.fees": ("Fees", "Gebühren", "Gebyrer"),
    "claim.paid": ("Paid", "Bezahlt", "Betalt"),
    "claim.balance": ("Open balance", "Offener Betrag", "Udestående beløb"),
    "claim.due": ("Due since", "Fällig seit", "Forfalden siden"),
    "claim.state": ("Status", "Status", "Status"),
    "state.open": ("open", "offen", "åben"),
    "state.reminded": ("reminded", "gemahnt", "rykket"),
    "state.promised": ("payment promised", "Zahlung zugesagt", "betaling lovet"),
    "state.plan_requested": (
        "installment plan requested",
        "Ratenzahlung beantragt",
        "afdragsordning anmodet",
    ),
    "state.plan_active": ("installment plan active", "Ratenzahlung läuft", "afdragsordning aktiv"),
    "state.disputed": ("disputed", "bestritten", "bestridt"),
    "state.on_hold": ("on hold", "ruht", "sat i bero"),
    "state.paid": ("paid", "bezahlt", "betalt"),
    "state.closed": ("closed", "abgeschlossen", "afsluttet"),
    "state.withdrawn": ("withdrawn", "zurückgezogen", "trukket tilbage"),
    "state.other": ("in progress", "in Bearbeitung", "under behandling"),
    # paying
    "pay.title": ("How to pay", "So bezahlen Sie", "Sådan betaler du"),
    "pay.text": (
        "Please transfer the open balance to this account and give the payment reference, so "
        "that we can match your payment.",
        "Bitte überweisen Sie den offenen Betrag auf dieses Konto und geben Sie den "
        "Verwendungszweck an, damit wir Ihre Zahlung zuordnen können.",
        "Overfør venligst det udestående beløb til denne konto, og angiv betalingsreferencen, så "
        "vi kan finde din betaling.",
    ),
    "pay.recipient": ("Recipient", "Empfänger", "Modtager"),
    "pay.iban": ("IBAN", "IBAN", "IBAN"),
    "pay.bic": ("BIC", "BIC", "BIC"),
    "pay.amount": ("Amount", "Betrag", "Beløb"),
    "pay.reference": ("Payment reference", "Verwendungszweck", "Betalingsreference"),
    "pay.qr": (
        "Scan this code with your banking app to fill in the transfer.",
        "Scannen Sie diesen Code mit Ihrer Banking-App, um die Überweisung auszufüllen.",
        "Scan koden med din bankapp for at udfylde overførslen.",
    ),
    "pay.none": (
        "Nothing is open on this case.",
        "Zu diesem Vorgang ist nichts mehr offen.",
        "Der er intet udestående på denne sag.",
    ),
    "pay.no_account": (
        "Please write to us for the bank details.",
        "Bitte schreiben Sie uns, wir nennen Ihnen die Bankverbindung.",
        "Skriv venligst til os for at få bankoplysningerne.",
    ),
    # plan and promise status
    "plan.title": ("Your installment plan", "Ihre Ratenzahlung", "Din afdragsordning"),
    "plan.status.approved": ("agreed", "vereinbart", "aftalt"),
    "plan.status.proposed": (
        "waiting for our decision",
        "wartet auf unsere Entscheidung",
        "afventer vores afgørelse",
    ),
    "plan.seq": ("Installment", "Rate", "Rate"),
    "plan.due": ("Due", "Fällig", "Forfalder"),
    "plan.amount": ("Amount", "Betrag", "Beløb"),
    # history
    "history.title": ("History", "Verlauf", "Historik"),
    "history.empty": ("Nothing yet.", "Noch keine Einträge.", "Endnu ingen indlæg."),
    "history.reminder": ("Our letter", "Unser Schreiben", "Vores brev"),
    "history.answer": ("Our answer", "Unsere Antwort", "Vores svar"),
    "history.debtor": ("You wrote", "Ihre Nachricht", "Du skrev"),
    "history.portal": ("You, in the portal", "Sie, im Portal", "Dig, i portalen"),
    "history.attachment": ("Attachment", "Anhang", "Vedhæftet fil"),
    # actions
    "actions.title": ("What would you like to do?", "Was möchten Sie tun?", "Hvad vil du gøre?"),
    "reply.title": ("Write to us", "Schreiben Sie uns", "Skriv til os"),
    "reply.label": ("Your message", "Ihre Nachricht", "Din besked"),
    "reply.submit": ("Send message", "Nachricht senden", "Send besked"),
    "promise.title": ("Promise a payment date", "Zahlungstermin zusagen", "Lov en betalingsdato"),
    "promise.date": ("I will pay by", "Ich zahle bis zum", "Jeg betaler senest"),
    "promise.amount": (
        "Amount (leave empty for the whole balance)",
        "Betrag (leer lassen für den gesamten Betrag)",
        "Beløb (lad feltet stå tomt for hele beløbet)",
    ),
    "promise.submit": ("Promise payment", "Zahlung zusagen", "Lov betaling"),
    "plan.form.title": (
        "Propose an installment plan",
        "Ratenzahlung vorschlagen",
        "Foreslå en afdragsordning",
    ),
    "plan.count": ("Number of installments", "Anzahl der Raten", "Antal rater"),
    "plan.per": (
        "Amount per installment (optional)",
        "Betrag je Rate (optional)",
        "Beløb pr. rate (valgfrit)",
    ),
    "plan.frequency": ("How often", "Wie oft", "Hvor ofte"),
    "freq.weekly": ("weekly", "wöchentlich", "ugentligt"),
    "freq.biweekly": ("every two weeks", "alle zwei Wochen", "hver anden uge"),
    "freq.monthly": ("monthly", "monatlich", "månedligt"),
    "plan.start": ("First installment on", "Erste Rate am", "Første rate den"),
    "plan.submit": ("Propose plan", "Ratenzahlung vorschlagen", "Foreslå ordning"),
    "dispute.title": ("Dispute the claim", "Forderung bestreiten", "Bestrid kravet"),
    "dispute.reason": ("Reason", "Grund", "Begrundelse"),
    "reason.already_paid": ("I have already paid", "Ich habe bereits bezahlt", "Jeg har betalt"),
    "reason.not_received": (
        "I never received the goods or service",
        "Ich habe die Ware oder Leistung nie erhalten",
        "Jeg har aldrig modtaget varen eller ydelsen",
    ),
    "reason.defective": (
        "The goods were faulty or returned",
        "Die Ware war mangelhaft oder wurde zurückgeschickt",
        "Varen var defekt eller er sendt retur",
    ),
    "reason.wrong_amount": (
        "The amount is wrong",
        "Der Betrag ist falsch",
        "Beløbet er forkert",
    ),
    "reason.not_owed": (
        "I do not owe this (never ordered, not me)",
        "Ich schulde das nicht (nie bestellt, nicht ich)",
        "Jeg skylder ikke dette (aldrig bestilt, ikke mig)",
    ),
    "reason.cancelled": (
        "The contract or order was cancelled",
        "Der Vertrag oder die Bestellung wurde widerrufen",
        "Aftalen eller ordren er annulleret",
    ),
    "reason.other": ("Another reason", "Ein anderer Grund", "En anden grund"),
    "dispute.text": ("Please explain", "Bitte erläutern Sie", "Forklar venligst"),
    "dispute.file": (
        "Document (PDF, PNG, JPEG or text, at most {size})",
        "Beleg (PDF, PNG, JPEG oder Text, höchstens {size})",
        "Dokument (PDF, PNG, JPEG eller tekst, højst {size})",
    ),
    "dispute.submit": ("Send dispute", "Einwand senden", "Send indsigelse"),
    "contact.title": (
        "Update your contact details",
        "Kontaktdaten ändern",
        "Opdater dine kontaktoplysninger",
    ),
    "contact.email": ("New email address", "Neue E-Mail-Adresse", "Ny e-mailadresse"),
    "contact.street": ("Street and number", "Straße und Hausnummer", "Gade og nummer"),
    "contact.postal": ("Postal code", "Postleitzahl", "Postnummer"),
    "contact.city": ("City", "Ort", "By"),
    "contact.phone": ("Phone", "Telefon", "Telefon"),
    "contact.hint": (
        "Leave fields empty that have not changed. A new email address is checked by us before "
        "we write to it.",
        "Lassen Sie unveränderte Felder leer. Eine neue E-Mail-Adresse prüfen wir, bevor wir "
        "an sie schreiben.",
        "Lad felter, der ikke er ændret, stå tomme. En ny e-mailadresse kontrollerer vi, før vi "
        "skriver til den.",
    ),
    "contact.submit": ("Save contact details", "Kontaktdaten speichern", "Gem kontaktoplysninger"),
    "key.title": ("Encrypted email", "Verschlüsselte E-Mail", "Krypteret e-mail"),
    "key.text": (
        "Upload your OpenPGP public key or your S/MIME certificate: we will then encrypt our "
        "emails to you.",
        "Laden Sie Ihren öffentlichen OpenPGP-Schlüssel oder Ihr S/MIME-Zertifikat hoch: Dann "
        "verschlüsseln wir unsere E-Mails an Sie.",
        "Upload din offentlige OpenPGP-nøgle eller dit S/MIME-certifikat: Så krypterer vi vores "
        "e-mails til dig.",
    ),
    "key.file": (
        "Key or certificate file",
        "Schlüssel- oder Zertifikatsdatei",
        "Nøgle- eller certifikatfil",
    ),
    "key.submit": ("Upload key", "Schlüssel hochladen", "Upload nøgle"),
    "optout.title": ("No more emails", "Keine E-Mails mehr", "Ikke flere e-mails"),
    "optout.text": (
        "We will no longer write to you by email. The claim remains open; we may write to you "
        "by post.",
        "Wir schreiben Ihnen dann nicht mehr per E-Mail. Die Forderung bleibt bestehen; wir "
        "können Ihnen per Post schreiben.",
        "Vi skriver så ikke længere til dig pr. e-mail. Kravet består; vi kan skrive til dig "
        "med posten.",
    ),
    "optout.submit": ("Stop emails", "E-Mails abbestellen", "Stop e-mails"),
    "optout.already": (
        "You have opted out of email.",
        "Sie haben E-Mails abbestellt.",
        "Du har frabedt dig e-mails.",
    ),
    # confirmations
    "done.reply": (
        "Thank you, we have received your message.",
        "Vielen Dank, wir haben Ihre Nachricht erhalten.",
        "Tak, vi har modtaget din besked.",
    ),
    "done.promise": (
        "Thank you. We have noted your payment date.",
        "Vielen Dank. Wir haben Ihren Zahlungstermin notiert.",
        "Tak. Vi har noteret din betalingsdato.",
    ),
    "done.promise_refused": (
        "We have received your promise; a member of our team will look at it.",
        "Wir haben Ihre Zusage erhalten; ein Mitarbeiter prüft sie.",
        "Vi har modtaget dit løfte; en medarbejder ser på det.",
    ),
    "done.plan_accepted": (
        "Your installment plan is agreed. The schedule is shown below.",
        "Ihre Ratenzahlung ist vereinbart. Den Zahlungsplan sehen Sie unten.",
        "Din afdragsordning er aftalt. Betalingsplanen kan ses nedenfor.",
    ),
    "done.plan_proposed": (
        "Thank you for your proposal. A member of our team will decide on it soon.",
        "Vielen Dank für Ihren Vorschlag. Ein Mitarbeiter entscheidet in Kürze darüber.",
        "Tak for dit forslag. En medarbejder tager snart stilling til det.",
    ),
    "done.dispute": (
        "We have received your dispute. We will stop reminders while we check it.",
        "Wir haben Ihren Einwand erhalten. Während wir ihn prüfen, mahnen wir nicht.",
        "Vi har modtaget din indsigelse. Vi sender ingen rykkere, mens vi undersøger den.",
    ),
    "done.contact": (
        "Thank you, we have received your new contact details.",
        "Vielen Dank, wir haben Ihre neuen Kontaktdaten erhalten.",
        "Tak, vi har modtaget dine nye kontaktoplysninger.",
    ),
    "done.key": (
        "Your key is saved. Our next emails to you will be encrypted.",
        "Ihr Schlüssel ist gespeichert. Unsere nächsten E-Mails an Sie werden verschlüsselt.",
        "Din nøgle er gemt. Vores næste e-mails til dig bliver krypteret.",
    ),
    "done.opt_out": (
        "Done: we will no longer write to you by email.",
        "Erledigt: Wir schreiben Ihnen nicht mehr per E-Mail.",
        "Udført: Vi skriver ikke længere til dig pr. e-mail.",
    ),
    # errors in forms
    "error.form": (
        "Please check your entries: {detail}",
        "Bitte prüfen Sie Ihre Angaben: {detail}",
        "Kontrollér venligst dine oplysninger: {detail}",
    ),
    "error.text_required": ("a text is needed", "ein Text fehlt", "der mangler en tekst"),
    "error.date": ("the date is not valid", "das Datum ist ungültig", "datoen er ugyldig"),
    "error.date_past": (
        "the date lies in the past or too far ahead",
        "das Datum liegt in der Vergangenheit oder zu weit in der Zukunft",
        "datoen ligger i fortiden eller for langt ude i fremtiden",
    ),
    "error.amount": ("the amount is not valid", "der Betrag ist ungültig", "beløbet er ugyldigt"),
    "error.count": (
        "the number of installments is not valid",
        "die Anzahl der Raten ist ungültig",
        "antallet af rater er ugyldigt",
    ),
    "error.plan": (
        "this plan does not work for the open balance",
        "dieser Plan passt nicht zum offenen Betrag",
        "denne ordning passer ikke til det udestående beløb",
    ),
    "error.reason": ("choose a reason", "wählen Sie einen Grund", "vælg en begrundelse"),
    "error.file_type": (
        "this file type is not accepted",
        "dieser Dateityp wird nicht angenommen",
        "denne filtype accepteres ikke",
    ),
    "error.file_size": ("the file is too large", "die Datei ist zu groß", "filen er for stor"),
    "error.email": (
        "the email address is not valid",
        "die E-Mail-Adresse ist ungültig",
        "e-mailadressen er ugyldig",
    ),
    "error.nothing": (
        "nothing was entered",
        "es wurde nichts eingegeben",
        "der er intet indtastet",
    ),
    "error.key": (
        "the file holds no usable key for one of your email addresses",
        "die Datei enthält keinen verwendbaren Schlüssel für eine Ihrer E-Mail-Adressen",
        "filen indeholder ingen brugbar nøgle til en af dine e-mailadresser",
    ),
    "error.state": (
        "this is not possible in the current state of your case",
        "das ist im aktuellen Stand Ihres Vorgangs nicht möglich",
        "det er ikke muligt i sagens nuværende status",
    ),
}

#: the texts the thread records for portal actions, in the portal's language
_THREAD: Mapping[str, tuple[str, str, str]] = {
    "promise": (
        "I will pay {amount} by {date}.",
        "Ich zahle {amount} bis zum {date}.",
        "Jeg betaler {amount} senest {date}.",
    ),
    "promise_all": (
        "I will pay the open balance by {date}.",
        "Ich zahle den offenen Betrag bis zum {date}.",
        "Jeg betaler det udestående beløb senest {date}.",
    ),
    "plan": (
        "I propose to pay in {count} {frequency} installments of {amount}, starting {start}.",
        "Ich schlage {count} Raten ({frequency}) zu je {amount} vor, beginnend am {start}.",
        "Jeg foreslår {count} rater ({frequency}) á {amount}, første gang {start}.",
    ),
    "dispute": (
        "I dispute the claim: {reason}.",
        "Ich bestreite die Forderung: {reason}.",
        "Jeg bestrider kravet: {reason}.",
    ),
    "contact": (
        "My contact details have changed: {fields}.",
        "Meine Kontaktdaten haben sich geändert: {fields}.",
        "Mine kontaktoplysninger er ændret: {fields}.",
    ),
    "key": (
        "Please encrypt your emails to me with this key ({kind}, {fingerprint}).",
        "Bitte verschlüsseln Sie Ihre E-Mails an mich mit diesem Schlüssel ({kind}, "
        "{fingerprint}).",
        "Kryptér venligst jeres e-mails til mig med denne nøgle ({kind}, {fingerprint}).",
    ),
    "opt_out": (
        "Please do not write to me by email any more.",
        "Bitte schreiben Sie mir nicht mehr per E-Mail.",
        "Skriv venligst ikke længere til mig pr. e-mail.",
    ),
}


def _pick(table: Mapping[str, tuple[str, str, str]], key: str, language: Language) -> str:
    return table[key][LANGUAGES.index(language)]


def text(key: str, language: Language, **values: Any) -> str:
    """The portal text ``key`` in ``language`` (KeyError for an unknown key)."""
    template = _pick(_TEXTS, key, language)
    return template.format(**values) if values else template


def thread_text(key: str, language: Language, **values: Any) -> str:
    """What the thread records for a portal action, worded as the debtor would write it."""
    return _pick(_THREAD, key, language).format(**values)


def translator(language: Language) -> Callable[..., str]:
    """``t(key, **values)`` for one language, for the page templates."""

    def translate(key: str, **values: Any) -> str:
        return text(key, language, **values)

    return translate


def keys() -> frozenset[str]:
    return frozenset(_TEXTS)
