"""The language of every post: the platform's code where it reports one, else detected offline from the text.

`LanguageDetector` answers `resolve(text, platform_lang) -> Language(lang, source, script)`:

- `script` comes from the characters: the writing system most of the text's letters are
  in ('Latn', 'Cyrl', 'other'), links and @handles left out; None without letters.
- A platform code that names a language is kept (`source` 'platform'). Codes that are not
  a language ("", "und", "zxx", X's "qme" media-only, "qht" hashtags-only, ...) count as
  missing: the text decides (`source` 'detected').
- Detection is lingua (`lingua-language-detector`, offline n-gram models) restricted to the
  configured languages (default: `DEFAULT_LANGUAGES`, the config's `languages:` or
  `--detect_languages`), plus rules where lingua is weak on short Serbo-Croatian text
  (its Serbian model knows Cyrillic only, so Latin Serbian comes out as Croatian or Bosnian):

  * `letters`: Cyrillic letters only one language has decide it: ђ ћ љ њ џ ј -> sr;
    і ї є ґ -> uk; ы э ъ ё -> ru; я ю щ ь й (never Serbian) keep to ru/uk.
  * `cyrillic_bcs`: Croatian is not written in Cyrillic: Cyrillic hr/bs -> sr.
  * `bcs_lexicon`: Latin Croatian/Serbian/Bosnian told apart by what the words say:
    ekavian forms (mleko, cena, lepo, uvek -> sr), ijekavian ones (mlijeko, cijena,
    lijepo, uvijek -> hr or bs), words one standard uses (tisuća, tjedan, kruh, vlak,
    nogomet, što, tko -> hr; hiljada, voz, fudbal, šta, ko -> sr or bs; nedelja, dinara,
    bre -> sr; sedmica, hljeb, kahva, historija, jarane, ba -> bs) and morphology
    (rezervirao / rezervisao, kupit ću / videćemo, neće da + verb).

  A text with fewer than `MIN_LETTERS` letters, or whose best language (the Serbo-Croatian
  standards counted together) has a confidence under `min_confidence`, is unknown:
  `lang` and `source` None. Empty, emoji-only and link-only texts are unknown too.

`DetectLanguage` is the Beam step (before matching: `lang:` rules of brand queries see the
detected language): mentions in, mentions with `lang`, `lang_source` and `script` out; a
post whose resolution raises goes to dead letters (step 'language'). The detector is built
once per worker process (`apache_beam.utils.shared.Shared`), not per element.

`tools/eval_language.py` measures it on the hand-written set `data/handwritten/language/`;
docs/language.md has the figures.
"""

from __future__ import annotations

import re
import typing

import apache_beam as beam
from apache_beam.utils import shared
from lingua import IsoCode639_1, LanguageDetectorBuilder
from lingua import Language as LinguaLanguage

from schemas import Mention
from schemas.config import DEFAULT_LANGUAGES, ConfigError
from transforms.dead_letters import dead_letter

__all__ = ["DEFAULT_LANGUAGES", "DetectLanguage", "DetectLanguageFn", "Language", "LanguageDetector", "RULES",
           "check_languages", "script_of"]

# Platform codes that say "no language" rather than naming one (X: qme media links, qht hashtags, qam
# mentions, qct cashtags, qst very short text, zxx no text, und undetermined; ISO: mul, mis, art).
NOT_A_LANGUAGE = frozenset({"", "und", "zxx", "qme", "qht", "qam", "qct", "qst", "qvo", "mul", "mis", "art", "xx",
                            "unknown", "none", "null"})
BCS = ("hr", "sr", "bs")
BCS_PRIOR = ("sr", "hr", "bs")
RULES = ("letters", "cyrillic_bcs", "bcs_lexicon")
MIN_LETTERS = 3
# Tuned on data/handwritten/language/validation.jsonl (tools/eval_language.py --split validation).
DEFAULT_MIN_CONFIDENCE = 0.5

_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_HANDLE = re.compile(r"(?<!\w)@\w+")
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
_CAMEL = re.compile(r"(?<=[a-zа-яё])(?=[A-ZА-ЯЁ])")

_SR_CYRILLIC = frozenset("ђћљњџјЂЋЉЊЏЈ")
_UK_CYRILLIC = frozenset("іїєґІЇЄҐ")
_RU_CYRILLIC = frozenset("ыэъёЫЭЪЁ")
_RU_UK_CYRILLIC = frozenset("яющьйЯЮЩЬЙ")


class Language(typing.NamedTuple):
    """A post's language as resolved: code (None: unknown), where it comes from, the script of its letters."""

    lang: str | None
    source: str | None  # 'platform', 'detected' or None (unknown)
    script: str | None  # 'Latn', 'Cyrl', 'other' or None (no letters)


def _words(*groups: str) -> frozenset[str]:
    return frozenset(w for group in groups for w in group.split())


# Word lists of the `bcs_lexicon` rule: lower case, as written (with and without diacritics where both
# spellings occur and the plain one is not another word). Two-word entries match adjacent words.
_EKAVIAN = _words(
    "mleko mleka mleku hleb hleba lepo lep lepa lepe lepi lepu lepše lepse pesma pesme pesmu dete deca dece "
    "reka reke belo beli bela belu mesto mesta devojka devojke uvek ovde gde posle cena cene ceni cenu cenom "
    "cenama videla videli razumem razume razumeju verovatno menja menjaju promena promene promeni primer svet "
    "sveta cvet lek lekar lekove sedim čovek covek zvezda zvezde osećam osecam ceo cela celu celo celog dve "
    "reč rec reči reci mesec meseca meseci leto telo verujem deluje delo htela htele srećan srecan srećno "
    "srecno primetio primetila mesečno mesecno mesečna mesecna vredi vredno vredan pevam pevač pevac zamena "
    "zameni smešno smesno smeh pre dole ponedeljak sedeo sedela veran verna mere mera nameštaj namestaj "
    "izmena izmene sneg letovanje letnji poslednji poslednja poslednjih poslednje veče rešeno rešen rešena "
    "rešili rešenje resen reseno nemačka nemačkoj nemačke nemacka nemackoj nemci obaveštenje obavestenje "
    "obaveštenja obavestenja")
_IJEKAVIAN = _words(
    "mlijeko mlijeka mlijeku lijepo lijep lijepa lijepe lijepi lijepu ljepše ljepse pjesma pjesme pjesmu "
    "dijete djeca djece rijeka rijeke bijelo bijeli bijela bijelu mjesto mjesta djevojka djevojke uvijek "
    "ovdje gdje poslije cijena cijene cijeni cijenu cijenom cijenama vidjela vidjeli razumijem razumije "
    "razumiju vjerovatno vjerojatno mijenja mijenjaju promjena promjene promijeni primjer svijet svijeta "
    "cvijet lijek lijekove sjedim čovjek covjek zvijezda zvijezde osjećam osjecam cijeli cijela cijelu cijelo "
    "cijelog dvije riječ rijec riječi rijeci mjesec mjeseca mjeseci ljeto tijelo vjerujem djeluje djelo "
    "htjela htjele primijetio primijetila mjesečno mjesecno mjesečna mjesecna vrijedi vrijedno vrijedan "
    "pjevam pjevač pjevac zamjena zamijeni smiješno smijesno smijeh prije dolje ponedjeljak sjedio sjedila "
    "vjeran vjerna mjere mjera namještaj namjestaj izmjena izmjene snijeg ljetovanje ljetni posljednji "
    "posljednja posljednjih posljednje riješeno riješen riješena riješili rješenje rijesen rijeseno njemačka "
    "njemačkoj njemačke njemacka njemackoj nijemci")
# Croatian standard only.
_HR = _words(
    "tisuća tisuca tisuću tisucu tisuće tisuce vlak vlaka vlakom tjedan tjedna tjednu tjedno nogomet nogometa "
    "nogometu kruh kruha kava kave kavu kavom što tko netko nitko itko zrakoplov kolodvor sveučilište "
    "ljekarna otok siječanj veljača ožujak travanj svibanj lipanj srpanj kolovoz rujan listopad studeni "
    "prosinac tvrtka tvrtke tvrtku trgovina trgovini obitelj obitelji glazba glazbu tipkovnica točno tocno "
    "uopće uopce općenito opcenito povijest znanost dućan ducan računalo racunalo tražilica obavijest "
    "prijevoz vani plaća placa plaću placu djelatnik djelatnici blagajna blagajni poslovnica poslovnici "
    "narudžba narudzba narudžbu narudzbu plin hlače hlace tenisice žlica zlica vrhnje mrkva rajčica rajcica "
    "grah krumpir krumpira europa europski europske eura kemija općina opcina točka tocka fakat ful kaj bok "
    "doista zbilja svejedno isprika ispričavamo ispricavamo hrvatska hrvatskoj zagreb zagrebu osijek kune "
    "kuna trebam trebaš trebas uređaj uredjaj uređaja sviđa svidja sviđalo svidjelo pogreška pogreska "
    "nazovite izvrsno izvrstan izvrsna nabavio nabavila minuti otoku otoka kupnja kupnju kupnje okus okusa "
    "okusom sustav sustava tenisice tenisica traperice traperica pisač pisac pisača kvaliteta kvalitetu "
    "blagajnica blagajnik")
# Serbian and Bosnian (not Croatian).
_SR_BS = _words(
    "kompjuter kompjutera računar racunar tačno tacno uopšte uopste opština opstina opšti tačka tacka hemija "
    "evropa evropski februar januar avgust oktobar septembar novembar decembar pantalone patike kašika kasika "
    "krompir ostrvo univerzitet apoteka muzika muziku fudbal fudbala voz voza vozom hiljada hiljadu hiljade "
    "šta sta ko neko niko iko komšija komsija sprat juče juce plata platu kafa kafu kafe kafom paradajz "
    "interesantno minut pare kupovina kupovinu kupovine kvalitet patika farmerke farmerki štampač stampac "
    "štampača kasirka kasir radnja radnji radnju ukus ukusa ukusom plate sistem sistema kancelarija "
    "kancelariji")
# Serbian only.
_SR_ONLY = _words(
    "beograd beogradu novi sad novom sadu niš srbija srbiji istorija istoriju vazduh obaveštenje obavestenje "
    "prevoz šargarepa sargarepa pasulj pavlaka porudžbina porudzbina porudžbinu porudzbinu poručio poručila "
    "poručim poručili porucio porucila ujutru bre jbg kapiram kapiraš ćale cale keva dinara dinar evra "
    "filijala filijali ekspozitura napolju nedelja nedelju nedelje")
# Croatian and Bosnian (not Serbian).
_HR_BS = _words(
    "naručio naručila naručiti naručili narucio narucila mobitel mobitela jučer jucer sretan sretno sretna "
    "ujutro")
# Bosnian only.
_BS = _words(
    "sedmica sedmicu sedmice hljeb hljeba kahva kahve kahvu historija historiju historije jarane jaran ba "
    "bona haman sevdah merak džaba dzaba akšam aksam komšiluk komsiluk sabur avlija pekmez ahbab mahrama "
    "sahat sahata sahati lahko obavještenje obavještenja obavjestenje obavjestenja maraka sarajevo sarajevu "
    "tuzla tuzli mostar mostaru zenica zenici bosna bosni konvertibilnih inšallah insallah inshallah selam")
_SR_ONLY = _SR_ONLY - {"novi", "sad", "novom", "sadu"} | {"novi sad", "novom sadu"}
# Morphology: loan verbs in -irati (hr: rezervirao) against -isati (sr, bs: rezervisao; not pisati and its
# compounds); the future with the infinitive apart (hr, bs: kupit ću) against joined (sr: kupiću); a modal
# with da + present (sr, bs: neće da štampa) against the infinitive (hr: neće printati).
_IRATI = re.compile(r"\b\w{3,}ira(?:o|la|lo|li|le|ti|m|š|s|mo|te|ju|no|na|nje)\b")
_ISATI = re.compile(r"\b(?!\w*pis)\w{4,}isa(?:o|la|lo|li|le|ti|no|na|nje)\b")
_FUTURE_APART = re.compile(r"\b\w{2,}t (?:ću|ćeš|će|ćemo|ćete|cu|ces|cemo|cete)\b")
# Joined: the plural and 2nd person only (the 1st singular -ću also ends nouns: tisuću, sreću, plaću).
_FUTURE_JOINED = re.compile(r"\b\w{2,}[aei](?:ćemo|ćete|ćeš)\b")
_MODAL_DA = re.compile(r"\b(?:neću|nećeš|neće|nećemo|nećete|hoću|hoćeš|hoće|moram|moraš|mora|moramo|možeš|može|mogu|"
                       r"treba|želim|želiš|znam|počeo|počela|neces|nece|necu|hocu|moze|zelim) da \w+")


def script_of(text: str) -> str | None:
    """The script most of the text's letters are in ('Latn', 'Cyrl', 'other'); None without letters.

    Links and @handles are left out: a Cyrillic post that links a site or tags an account is Cyrillic.
    """
    latin = cyrillic = other = 0
    for ch in _HANDLE.sub(" ", _URL.sub(" ", text)):
        if not ch.isalpha():
            continue
        if ch < "\u0250" or "\u1e00" <= ch <= "\u1eff":
            latin += 1
        elif "\u0400" <= ch <= "\u052f":
            cyrillic += 1
        else:
            other += 1
    if not (latin or cyrillic or other):
        return None
    best = max(latin, cyrillic, other)
    return "Latn" if latin == best else "Cyrl" if cyrillic == best else "other"


def detection_text(text: str) -> str:
    """The text lingua sees: no links or @handles, hashtags as words (#SuperPonuda -> Super Ponuda)."""
    text = _HANDLE.sub(" ", _URL.sub(" ", text))
    return _CAMEL.sub(" ", text.replace("#", " "))


def check_languages(codes: typing.Sequence[str], where: str) -> tuple[str, ...]:
    """The codes, lower case and once each, if lingua has a model for every one; else a ConfigError naming `where`.

    Args:
        codes: ISO 639-1 codes (e.g. ['en', 'hr']).
        where: The flag or config field that named them, for the message.

    Returns:
        The codes, normalised.

    Raises:
        ConfigError: a code lingua does not know, or fewer than one code.
    """
    out = tuple(dict.fromkeys(str(c).strip().lower() for c in codes if str(c).strip()))
    if not out:
        raise ConfigError(f"{where}: expected at least one language code (e.g. en, ru, uk, hr, sr, bs)")
    known = {lang.iso_code_639_1.name.lower() for lang in LinguaLanguage.all()}
    for code in out:
        if code not in known:
            raise ConfigError(f"{where}: {code!r} is not a language the detector knows (ISO 639-1 codes such as "
                              f"{', '.join(DEFAULT_LANGUAGES)}; {len(known)} in all)")
    return out


class LanguageDetector:
    """Resolves a post's language; build once per process (lingua's models for the six default
    languages load in 6-13 s on first use and take ~190 MB; docs/language.md).

    Args:
        languages: ISO 639-1 codes the detector may answer (see `check_languages`); Serbian, Croatian and
            Bosnian each answer only when configured.
        min_confidence: Below this (the best language's, the Serbo-Croatian standards counted together) a
            text is unknown.
        rules: The rules to apply on top of lingua (default: all of `RULES`; the evaluation turns each off).
        low_accuracy: lingua's low-accuracy mode (trigrams only: less memory, faster; see docs/language.md).
    """

    def __init__(self, languages: typing.Sequence[str] = DEFAULT_LANGUAGES,
                 min_confidence: float = DEFAULT_MIN_CONFIDENCE, rules: typing.Iterable[str] | None = None,
                 low_accuracy: bool = False):
        self.languages = check_languages(languages, "languages")
        self.min_confidence = float(min_confidence)
        self.rules = frozenset(RULES if rules is None else rules)
        unknown = self.rules - set(RULES)
        if unknown:
            raise ValueError(f"unknown rule(s) {sorted(unknown)}; known: {list(RULES)}")
        isos = [getattr(IsoCode639_1, code.upper()) for code in self.languages]
        builder = LanguageDetectorBuilder.from_iso_codes_639_1(*isos) if len(isos) > 1 else None
        if builder is None:
            self._detector = None  # one language: nothing to choose between
        else:
            if low_accuracy:
                builder = builder.with_low_accuracy_mode()
            self._detector = builder.build()
        self._configured = frozenset(self.languages)

    def resolve(self, text: str, platform_lang: str | None = None) -> Language:
        """The post's language: the platform's code when it names one, else detected; and the text's script.

        Args:
            text: The post's text.
            platform_lang: The code the platform reported (None, '' or a non-language code: missing).

        Returns:
            Language(lang, source, script); lang and source None when unknown.
        """
        script = script_of(text)
        code = (platform_lang or "").strip().lower()
        if code and code not in NOT_A_LANGUAGE:
            return Language(code, "platform", script)
        lang = self.detect(text, script)
        return Language(lang, "detected" if lang else None, script)

    def detect(self, text: str, script: str | None = None) -> str | None:
        """The language of `text` among the configured ones; None when unknown.

        Args:
            text: Any text (empty, emoji-only and link-only texts are unknown).
            script: `script_of(text)`, when the caller has it.

        Returns:
            An ISO 639-1 code, or None.
        """
        clean = detection_text(text)
        letters = sum(ch.isalpha() for ch in clean)
        if letters < MIN_LETTERS:
            return None
        if script is None:
            script = script_of(text)
        if script == "Cyrl" and "letters" in self.rules:
            decided = self._cyrillic_letters(clean)
            if decided is not None:
                return decided
        scores = self._scores(clean, script)
        if not scores:
            return None
        bcs = sum(scores.get(c, 0.0) for c in BCS)
        best = max(scores, key=scores.get)
        if best in BCS and bcs >= self.min_confidence:
            return self._bcs(clean, script, scores)
        if scores[best] < self.min_confidence:
            return None
        return best

    def _scores(self, clean: str, script: str | None) -> dict[str, float]:
        """lingua's confidence per configured language (they sum to 1; empty when it recognises nothing)."""
        if self._detector is None:
            return {self.languages[0]: 1.0}
        values = self._detector.compute_language_confidence_values(clean)
        scores = {v.language.iso_code_639_1.name.lower(): v.value for v in values}
        return scores if any(scores.values()) else {}

    def _cyrillic_letters(self, clean: str) -> str | None:
        """The `letters` rule: a language decided by letters only it has, when configured."""
        chars = set(clean)
        for letters, code in ((_SR_CYRILLIC, "sr"), (_UK_CYRILLIC, "uk"), (_RU_CYRILLIC, "ru")):
            if code in self._configured and chars & letters:
                return code
        if chars & _RU_UK_CYRILLIC:
            # Never Serbian: lingua decides between Russian and Ukrainian only.
            scores = self._scores(clean, "Cyrl")
            pair = {c: scores.get(c, 0.0) for c in ("ru", "uk") if c in self._configured}
            if pair and max(pair.values()) > 0:
                return max(pair, key=pair.get)
        return None

    def _bcs(self, clean: str, script: str | None, scores: typing.Mapping[str, float]) -> str:
        """Croatian, Serbian or Bosnian, for a text lingua places among them."""
        options = [c for c in BCS if c in self._configured]
        if script == "Cyrl" and "cyrillic_bcs" in self.rules and "sr" in self._configured:
            return "sr"
        if script == "Latn" and "bcs_lexicon" in self.rules:
            decided = self._lexicon(clean, options)
            if decided is not None:
                return decided
        return max(options, key=lambda c: scores.get(c, 0.0))

    @staticmethod
    def _lexicon(clean: str, options: typing.Sequence[str]) -> str | None:
        """The `bcs_lexicon` rule: votes from ekavian/ijekavian forms and words one standard uses."""
        words = [w.lower() for w in _WORD.findall(clean)]
        pairs = {f"{a} {b}" for a, b in zip(words, words[1:])}
        tokens = set(words) | pairs
        ekavian = len(tokens & _EKAVIAN)
        ijekavian = len(tokens & _IJEKAVIAN)
        hr = len(tokens & _HR)
        sr_only = len(tokens & _SR_ONLY)
        sr_bs = len(tokens & _SR_BS)
        bs = len(tokens & _BS)
        hr_bs = len(tokens & _HR_BS)
        lowered = " ".join(words)
        hr += len(_IRATI.findall(lowered))
        sr_bs += len(_ISATI.findall(lowered)) + len(_MODAL_DA.findall(lowered))
        hr_bs += len(_FUTURE_APART.findall(lowered))
        sr_only += len(_FUTURE_JOINED.findall(lowered))
        votes = {"sr": 2 * sr_only + sr_bs + 2 * ekavian,
                 "hr": 2 * hr + hr_bs + ijekavian,
                 "bs": 2 * bs + sr_bs + hr_bs + ijekavian}
        votes = {c: v for c, v in votes.items() if c in options}
        if not votes or not any(votes.values()):
            return None
        top = max(votes.values())
        tied = [c for c, v in votes.items() if v == top]
        # A tie goes to the standard more people write (Serbian, then Croatian): Bosnian differs from
        # Serbian by its ijekavian forms and from Croatian by its words, so it needs evidence of both kinds
        # or words of its own.
        return min(tied, key=BCS_PRIOR.index)


class DetectLanguageFn(beam.DoFn):
    """Mention -> the mention with `lang`, `lang_source` and `script`; a post that raises -> DEAD_LETTERS.

    The detector is shared by every thread of a worker process (`Shared`): built once per worker.
    """

    DEAD_LETTERS = "dead_letters"

    def __init__(self, languages: typing.Sequence[str], min_confidence: float = DEFAULT_MIN_CONFIDENCE):
        self._languages = tuple(languages)
        self._min_confidence = min_confidence
        self._shared = shared.Shared()
        self._detector: LanguageDetector | None = None
        self._detected = beam.metrics.Metrics.counter("language", "detected_mentions")
        self._unknown = beam.metrics.Metrics.counter("language", "unknown_mentions")

    def setup(self):
        self._detector = self._shared.acquire(lambda: LanguageDetector(self._languages, self._min_confidence))

    def process(self, mention: Mention):
        try:
            found = self._detector.resolve(mention.text, mention.lang)
        except Exception as exc:  # one post's fault (a text no rule foresaw), never the run's
            yield beam.pvalue.TaggedOutput(self.DEAD_LETTERS, dead_letter(
                "language", f"language detection failed: {type(exc).__name__}: {exc}", mention,
                f"{mention.platform}:{mention.id}"))
            return
        if found.source == "detected":
            self._detected.inc()
        elif found.source is None:
            self._unknown.inc()
        yield mention._replace(lang=found.lang, lang_source=found.source, script=found.script)


class DetectLanguage(beam.PTransform):
    """Mentions in; {'mentions': with language columns, 'dead_letters'} out.

    Checks the language codes at construction, so an unknown code stops the run at start.

    Args:
        languages: ISO 639-1 codes to detect among.
        min_confidence: Below this a text is unknown.
    """

    def __init__(self, languages: typing.Sequence[str] = DEFAULT_LANGUAGES,
                 min_confidence: float = DEFAULT_MIN_CONFIDENCE):
        super().__init__()
        self._languages = check_languages(languages, "languages")
        self._min_confidence = min_confidence

    def expand(self, mentions):
        out = mentions | "Detect" >> beam.ParDo(DetectLanguageFn(self._languages, self._min_confidence)).with_outputs(
            DetectLanguageFn.DEAD_LETTERS, main="mentions")
        return {"mentions": out.mentions, "dead_letters": out[DetectLanguageFn.DEAD_LETTERS]}
