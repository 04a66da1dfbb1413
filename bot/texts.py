"""Every text a user sees, in Russian and English: Russian for `ru*` Telegram languages, English otherwise."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Texts:
    """One language's texts; the format fields are filled in by the handlers."""

    start: str
    help: str
    mode_prompt: str
    mode_chosen: str
    filter_names: dict[str, str]
    faces_covered: str
    album_unchanged: str
    no_face: str
    album_no_face: str
    busy: str
    unavailable: str
    unsupported: str
    too_large: str
    too_many_pixels: str
    corrupt: str
    failed: str
    timeout: str
    not_allowed: str
    album_partly_failed: str
    commands: dict[str, str]


ENGLISH = Texts(
    start=(
        "Hi! Send me a photo and I will send it back with every face covered, so nobody can be recognized.\n\n"
        "Send it as a photo, as a file (JPEG, PNG or WebP — files keep their full quality) or as an album of up to "
        "10 pictures. Choose how faces are covered with /mode. More in /help."
    ),
    help=(
        "<b>What I do</b>\nI find every human face in your picture and cover it; everything else stays as it was.\n\n"
        "<b>How to use me</b>\n"
        "• Send a photo: you get it back with the faces covered.\n"
        "• Send a picture as a file (JPEG, PNG, WebP, up to {max_mb} MB): you get a file in the same format and "
        "size back, without metadata (no location, no camera data).\n"
        "• Send an album of up to 10 pictures: you get one album back, in the same order.\n\n"
        "<b>Filters</b> (choose with /mode; now: {current})\n"
        "• noise — random noise, nothing of the face is left;\n"
        "• blur — a strong blur;\n"
        "• pixelate — large blocks;\n"
        "• solid — a flat colour.\n\n"
        "<b>What I keep</b>\nNothing. Pictures are processed in memory and forgotten once the reply is sent; I only "
        "remember your filter choice. The log keeps only technical records (chat id, how many pictures, how long they "
        "took), never the pictures, their captions or file names."
    ),
    mode_prompt="How should faces be covered? Now: <b>{current}</b>.",
    mode_chosen="Faces will be covered with <b>{current}</b>. Send a photo.",
    filter_names={"noise": "noise", "blur": "blur", "pixelate": "pixelate", "solid": "solid"},
    faces_covered="Faces covered: {count}.",
    album_unchanged="No face found in picture(s) {positions}: they are unchanged.",
    no_face="I found no face in this picture, so I did not change it.",
    album_no_face="I found no face in these pictures, so I did not change them.",
    busy="I am busy with other people's pictures right now. Please try again in {seconds} s.",
    unavailable="I am temporarily unavailable. Please try again in a minute.",
    unsupported=(
        "I only accept pictures: a photo, an album of photos, or an image file in JPEG, PNG or WebP. "
        "Stickers, videos, GIFs, voice messages and other files are not supported."
    ),
    too_large="This file is too large: I accept files up to {max_mb} MB. Please send a smaller one.",
    too_many_pixels="This picture has too many pixels: I accept up to {max_mp} megapixels. Please send a smaller one.",
    corrupt="I could not read this picture: the file seems damaged. Please send it again or try another one.",
    failed="Something went wrong while processing this picture. Please try again.",
    timeout="Sorry, this picture took too long to process and I had to give up. Please try again later.",
    not_allowed="Sorry, this bot is private and not available to you.",
    album_partly_failed="Picture(s) {positions} could not be processed: {reason}",
    commands={"start": "What this bot does", "help": "How to use it and what it keeps", "mode": "Choose the filter"},
)

RUSSIAN = Texts(
    start=(
        "Привет! Пришлите мне фото, и я верну его с закрытыми лицами, чтобы никого нельзя было узнать.\n\n"
        "Можно прислать фото, файл (JPEG, PNG или WebP — файлы сохраняют полное качество) или альбом до 10 снимков. "
        "Способ закрытия лиц выбирается командой /mode. Подробнее — /help."
    ),
    help=(
        "<b>Что я делаю</b>\nНахожу на снимке все человеческие лица и закрываю их; всё остальное остаётся как было.\n\n"
        "<b>Как пользоваться</b>\n"
        "• Пришлите фото — получите его обратно с закрытыми лицами.\n"
        "• Пришлите изображение файлом (JPEG, PNG, WebP, до {max_mb} МБ) — получите файл того же формата и размера, "
        "без метаданных (без геопозиции и данных камеры).\n"
        "• Пришлите альбом до 10 снимков — получите один альбом в том же порядке.\n\n"
        "<b>Фильтры</b> (выбор — /mode; сейчас: {current})\n"
        "• шум — случайный шум, от лица ничего не остаётся;\n"
        "• размытие — сильное размытие;\n"
        "• пиксели — крупные квадраты;\n"
        "• заливка — сплошной цвет.\n\n"
        "<b>Что я храню</b>\nНичего. Снимки обрабатываются в памяти и забываются после ответа; я помню только "
        "выбранный фильтр. В журнал попадают только технические данные (id чата, число снимков, время обработки) — "
        "никогда не снимки, подписи или имена файлов."
    ),
    mode_prompt="Как закрывать лица? Сейчас: <b>{current}</b>.",
    mode_chosen="Лица будут закрыты так: <b>{current}</b>. Пришлите фото.",
    filter_names={"noise": "шум", "blur": "размытие", "pixelate": "пиксели", "solid": "заливка"},
    faces_covered="Закрыто лиц: {count}.",
    album_unchanged="На снимках {positions} лиц не найдено: они не изменены.",
    no_face="Я не нашёл на этом снимке ни одного лица, поэтому не стал его менять.",
    album_no_face="Я не нашёл лиц на этих снимках, поэтому не стал их менять.",
    busy="Сейчас я занят снимками других людей. Попробуйте ещё раз через {seconds} с.",
    unavailable="Я временно недоступен. Попробуйте ещё раз через минуту.",
    unsupported=(
        "Я принимаю только изображения: фото, альбом фото или файл JPEG, PNG или WebP. "
        "Стикеры, видео, GIF, голосовые сообщения и другие файлы не поддерживаются."
    ),
    too_large="Файл слишком большой: я принимаю файлы до {max_mb} МБ. Пришлите, пожалуйста, файл поменьше.",
    too_many_pixels="В снимке слишком много пикселей: я принимаю до {max_mp} мегапикселей. Пришлите снимок поменьше.",
    corrupt="Не удалось прочитать снимок: похоже, файл повреждён. Пришлите его ещё раз или попробуйте другой.",
    failed="При обработке снимка что-то пошло не так. Попробуйте ещё раз.",
    timeout="Извините, снимок обрабатывался слишком долго, и я прервал работу. Попробуйте позже.",
    not_allowed="Извините, это закрытый бот, и он вам недоступен.",
    album_partly_failed="Снимки {positions} обработать не удалось: {reason}",
    commands={"start": "Что умеет бот", "help": "Как пользоваться и что хранится", "mode": "Выбрать фильтр"},
)


def texts_for(language_code: str | None) -> Texts:
    """Russian for Telegram languages starting with "ru", English for everything else."""
    return RUSSIAN if (language_code or "").lower().startswith("ru") else ENGLISH
