"""Every text a user sees, in Russian and English: Russian for `ru*` Telegram languages, English otherwise."""

from __future__ import annotations

from dataclasses import dataclass

import filters


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
    album_strict_hint: str
    no_face: str
    album_no_face: str
    format_changed: str
    look_harder: str
    strict_covered: str
    strict_no_face: str
    strict_how: str
    strict_expired: str
    strict_not_yours: str
    strict_started: str
    strict_photos_only: str
    video_status: str
    video_waiting: str
    video_progress: str
    video_covered: str
    video_no_face: str
    video_too_long: str
    video_too_many_pixels: str
    video_busy: str
    video_corrupt: str
    video_timeout: str
    video_in_album: str
    result_too_large: str
    seconds: str
    minutes: str
    busy: str
    unavailable: str
    unsupported: str
    too_large: str
    too_many_pixels: str
    too_slow: str
    corrupt: str
    failed: str
    timeout: str
    not_allowed: str
    album_partly_failed: str
    choose_faces: str
    choose_in_album: str
    choose_prompt: str
    choose_done: str
    cover_all: str
    show_all: str
    chosen_covered: str
    choose_expired: str
    choose_not_yours: str
    choose_gone: str
    choose_too_often: str
    strict_again: str
    slow_down: str
    regions_covered: str
    edit: str
    editor_unauthorized: str
    editor_too_fast: str
    editor_too_many_regions: str
    editor_bad_choice: str
    # The Mini App page's own labels and messages (bot.miniapp), by key; "{...}" fields are filled in by the page.
    editor: dict[str, str]
    commands: dict[str, str]


ENGLISH = Texts(
    start=(
        "Hi! Send me a photo, a video, a GIF or a video note, and I will send it back with the faces I find "
        "covered.\n\n"
        "I find most faces, but not always every one, so please look at the result before you share it. If I "
        "missed a face, press “Look harder” under the result or reply /strict to your photo. "
        "Choose how faces are covered with /mode. More in /help."
    ),
    help=(
        "<b>What I do</b>\nI look for human faces and cover the ones I find; everything else stays as it was. I find "
        "most faces, not all: on labelled test photos about 9 in 10 came back with every face covered. Small, "
        "turned-away and half-hidden faces are the ones I miss, and now and then I cover something that is not a "
        "face. <b>Please look at every result before you share it.</b>\n\n"
        "<b>Missed a face?</b>\nPress “Look harder” under the result, or reply /strict to your photo: I look again "
        "with more care. It takes longer and may cover a little more than the faces.\n\n"
        "<b>Want a face shown?</b>\nPress “Choose faces” under the result: the faces I found are numbered, and you "
        "pick which stay covered. Showing a face is your decision.\n\n"
        "<b>How to use me</b>\n"
        "• Send a photo: you get it back with the faces covered.\n"
        "• Send a picture as a file (JPEG, PNG, WebP, HEIC, AVIF, up to {max_mb} MB): you get a file back, without "
        "metadata (no location, no camera data); HEIC comes back as JPEG.\n"
        "• Send an album of up to 10 pictures: you get one album back, in the same order.\n"
        "• Send a video, a GIF or a video note (up to {max_s} s and {max_mb} MB): the faces are covered in every "
        "frame, the sound is kept, and you see the progress while I work.\n\n"
        "<b>Filters</b> (choose with /mode; now: {current})\n"
        "• noise — random noise, nothing of the face is left;\n"
        "• blur — a strong blur;\n"
        "• pixelate — large blocks;\n"
        "• solid — a flat colour.\n\n"
        "<b>What I keep</b>\nNo pictures or videos. They are processed in memory and forgotten once the reply is sent. "
        "I remember your filter choice and, for {strict_minutes} minutes after each result, Telegram's reference to "
        "your original and where its faces are, so that “Look harder” and “Choose faces” work (never the picture "
        "itself). The log keeps only technical records "
        "(chat id, how many pictures, how long they took), never the pictures, their captions or file names."
    ),
    mode_prompt="How should faces be covered? Now: <b>{current}</b>.",
    mode_chosen="Faces will be covered with <b>{current}</b>. Send a photo.",
    filter_names={name: name for name in filters.available()},
    faces_covered="Faces covered: {count}. Please check it before sharing: I can miss a face.",
    album_unchanged="No face found in picture(s) {positions}: they are unchanged.",
    album_strict_hint="Missed a face? Reply /strict to that photo.",
    no_face="I found no face in this picture, so I did not change it. If there is one, press “Look harder”.",
    album_no_face="I found no face in these pictures, so I did not change them.",
    format_changed="Sent back as {format}.",
    look_harder="🔍 Missed a face? Look harder",
    strict_covered="Looked harder. Faces covered: {count}. Please check it again before sharing.",
    strict_no_face="Even looking harder, I found no face in this picture.",
    strict_how="Reply /strict to your photo (or to my answer to it), and I will look at it again, more thoroughly.",
    strict_expired="This button has expired. Reply /strict to your photo instead.",
    strict_not_yours="Only the person who sent this photo can ask for a second look.",
    strict_started="Looking harder…",
    strict_photos_only="A second look works for photos and image files.",
    video_status="Got it. I am covering the faces in every frame; this message shows how far I am.",
    video_waiting="Your video is waiting for its turn: other videos are being processed.",
    video_progress="Covering faces: {percent} % of the frames done, about {left} left.",
    video_covered="Faces covered in every frame: {count} followed. Please watch it before sharing: I can miss a face.",
    video_no_face="I found no face in this video, so I did not change it.",
    video_too_long="This video is too long: I accept up to {max_s} s. Please send a shorter one.",
    video_too_many_pixels=(
        "This video's picture is too large: I accept frames up to {max_mp} megapixels (Full HD is 2.1). "
        "Please send a smaller one."
    ),
    video_busy="I am busy with other videos right now. Please try again in {wait}.",
    video_corrupt="I could not read this video: the file seems damaged. Please send it again or try another one.",
    video_timeout="Sorry, this video took too long to process and I had to give up. Please send a shorter one.",
    video_in_album="videos in an album are not processed: send each video on its own",
    result_too_large="The result is larger than Telegram lets me send (50 MB). Please send a shorter video.",
    seconds="{n} s",
    minutes="{n} min",
    busy="I am busy with other people's pictures right now. Please try again in {seconds} s.",
    unavailable="I am temporarily unavailable. Please try again in a minute.",
    unsupported=(
        "I accept photos, albums, image files (JPEG, PNG, WebP, HEIC, AVIF), GIFs, videos (MP4, MOV, WebM, MKV) and "
        "video notes. Stickers, voice messages and other files are not supported."
    ),
    too_large="This file is too large: I accept files up to {max_mb} MB. Please send a smaller one.",
    too_many_pixels="This picture has too many pixels: I accept up to {max_mp} megapixels. Please send a smaller one.",
    too_slow="This picture is too large for me to cover in time. Please send a smaller one.",
    corrupt="I could not read this picture: the file seems damaged. Please send it again or try another one.",
    failed="Something went wrong while processing this picture. Please try again.",
    timeout="Sorry, this picture took too long to process and I had to give up. Please try again later.",
    not_allowed="Sorry, this bot is private and not available to you.",
    album_partly_failed="Picture(s) {positions} could not be processed: {reason}",
    choose_faces="👤 Choose faces",
    choose_in_album="Choose the faces of a picture in this album:",
    choose_prompt=(
        "The faces I found are numbered. Tap a number to show (○) or cover (✓) that face, then press Done. "
        "Showing a face is your decision: everyone you send the picture to will see it."
    ),
    choose_done="Done",
    cover_all="Cover all",
    show_all="Show all",
    chosen_covered="Faces covered: {covered} of {count}; shown as you chose: {shown}. Please check it before sharing.",
    choose_expired="This result is too old to change now. Send the photo again.",
    choose_not_yours="Only the person who sent this photo can choose its faces.",
    choose_gone="That picture was deleted, so there is nothing to change. Send the photo again.",
    choose_too_often="This picture has been changed many times. Send the photo again to start over.",
    strict_again="I have already looked harder at this photo. Send it again if you want a fresh look.",
    slow_down="That is a lot of messages at once. I will answer again in a minute.",
    regions_covered="Areas you marked, covered: {count}.",
    edit="✏️ Edit",
    editor_unauthorized=(
        "This editor was opened too long ago, or not from Telegram. Close it and press “✏️ Edit” under your photo again."
    ),
    editor_too_fast="Too many requests at once. Wait a minute, then try again.",
    editor_too_many_regions="At most {max} areas can be marked on one picture.",
    editor_bad_choice="This choice does not fit the picture. Close the editor and open it again.",
    editor={
        "title": "Faces to cover",
        "hint": (
            "Tap a face to show or cover it; showing one is your decision. Drag over a face I missed to cover it too."
        ),
        "status": "Faces covered: {covered} of {count} · areas marked: {regions}",
        "apply": "Apply",
        "applying": "Painting…",
        "undo": "Undo",
        "box": "Rectangle",
        "ellipse": "Ellipse",
        "delete": "Delete the area",
        "zoom_in": "Zoom in",
        "zoom_out": "Zoom out",
        "fit": "Whole picture",
        "too_many": "At most {max} areas can be marked on one picture.",
        "loading": "Loading the picture…",
        "outside": "Open the editor with the “✏️ Edit” button under your photo in Telegram.",
        "unreadable": "This picture cannot be shown here. Use “👤 Choose faces” under it in the chat.",
        "offline": "No connection. Try again.",
    },
    commands={
        "start": "What this bot does",
        "help": "How to use it, how well it works, what it keeps",
        "mode": "Choose the filter",
        "strict": "Look harder at a photo (reply to it)",
    },
)

RUSSIAN = Texts(
    start=(
        "Привет! Пришлите мне фото, видео, GIF или видеосообщение, и я верну его с закрытыми лицами — теми, "
        "которые найду.\n\n"
        "Я нахожу большинство лиц, но не всегда все, поэтому посмотрите на результат, прежде чем им делиться. Если я "
        "пропустил лицо, нажмите «Поискать внимательнее» под результатом или ответьте на своё фото командой /strict. "
        "Способ закрытия лиц выбирается командой /mode. Подробнее — /help."
    ),
    help=(
        "<b>Что я делаю</b>\nИщу на снимке человеческие лица и закрываю найденные; всё остальное остаётся как было. "
        "Я нахожу большинство лиц, но не все: на размеченных тестовых снимках примерно 9 из 10 вернулись со всеми "
        "закрытыми лицами. Чаще всего я пропускаю мелкие, отвёрнутые и наполовину скрытые лица, а иногда закрываю "
        "то, что лицом не является. <b>Посмотрите на каждый результат, прежде чем им делиться.</b>\n\n"
        "<b>Пропущено лицо?</b>\nНажмите «Поискать внимательнее» под результатом или ответьте на своё фото "
        "командой /strict: я посмотрю ещё раз, тщательнее. Это дольше, и закрыто может быть чуть больше, чем лица.\n\n"
        "<b>Хотите оставить лицо открытым?</b>\nНажмите «Выбрать лица» под результатом: найденные лица "
        "пронумерованы, и вы решаете, какие из них закрыть. Открыть лицо — ваше решение.\n\n"
        "<b>Как пользоваться</b>\n"
        "• Пришлите фото — получите его обратно с закрытыми лицами.\n"
        "• Пришлите изображение файлом (JPEG, PNG, WebP, HEIC, AVIF, до {max_mb} МБ) — получите файл без метаданных "
        "(без геопозиции и данных камеры); HEIC возвращается как JPEG.\n"
        "• Пришлите альбом до 10 снимков — получите один альбом в том же порядке.\n"
        "• Пришлите видео, GIF или видеосообщение (до {max_s} с и {max_mb} МБ) — лица будут закрыты в каждом кадре, "
        "звук сохранится, а пока я работаю, вы видите, сколько сделано.\n\n"
        "<b>Фильтры</b> (выбор — /mode; сейчас: {current})\n"
        "• шум — случайный шум, от лица ничего не остаётся;\n"
        "• размытие — сильное размытие;\n"
        "• пиксели — крупные квадраты;\n"
        "• заливка — сплошной цвет.\n\n"
        "<b>Что я храню</b>\nНикаких снимков и видео: они обрабатываются в памяти и забываются после ответа. "
        "Я помню выбранный фильтр и в течение {strict_minutes} минут после каждого результата — ссылку Telegram на "
        "оригинал и место лиц на нём, чтобы работали кнопки «Поискать внимательнее» и «Выбрать лица» (но не сам "
        "снимок). В журнал попадают только "
        "технические данные (id чата, число снимков, время обработки) — никогда не снимки, подписи или имена файлов."
    ),
    mode_prompt="Как закрывать лица? Сейчас: <b>{current}</b>.",
    mode_chosen="Лица будут закрыты так: <b>{current}</b>. Пришлите фото.",
    filter_names={"noise": "шум", "blur": "размытие", "pixelate": "пиксели", "solid": "заливка"},
    faces_covered="Закрыто лиц: {count}. Проверьте, прежде чем делиться: я могу пропустить лицо.",
    album_unchanged="На снимках {positions} лиц не найдено: они не изменены.",
    album_strict_hint="Пропущено лицо? Ответьте на этот снимок командой /strict.",
    no_face=(
        "Я не нашёл на этом снимке ни одного лица, поэтому не стал его менять. Если лицо там есть, нажмите "
        "«Поискать внимательнее»."
    ),
    album_no_face="Я не нашёл лиц на этих снимках, поэтому не стал их менять.",
    format_changed="Возвращаю в формате {format}.",
    look_harder="🔍 Пропущено лицо? Поискать внимательнее",
    strict_covered="Посмотрел внимательнее. Закрыто лиц: {count}. Проверьте ещё раз, прежде чем делиться.",
    strict_no_face="Даже при внимательном поиске я не нашёл на этом снимке лиц.",
    strict_how=(
        "Ответьте командой /strict на своё фото (или на мой ответ к нему), и я посмотрю на него ещё раз, тщательнее."
    ),
    strict_expired="Срок действия кнопки истёк. Ответьте на своё фото командой /strict.",
    strict_not_yours="Попросить посмотреть ещё раз может только тот, кто прислал снимок.",
    strict_started="Ищу внимательнее…",
    strict_photos_only="Повторный поиск работает для фото и файлов-изображений.",
    video_status="Принято. Закрываю лица в каждом кадре; в этом сообщении будет видно, сколько сделано.",
    video_waiting="Ваше видео ждёт очереди: сейчас обрабатываются другие видео.",
    video_progress="Закрываю лица: готово {percent} % кадров, осталось около {left}.",
    video_covered=(
        "Лица закрыты в каждом кадре, отслежено лиц: {count}. Посмотрите видео, прежде чем делиться: я могу "
        "пропустить лицо."
    ),
    video_no_face="Я не нашёл в этом видео ни одного лица, поэтому не стал его менять.",
    video_too_long="Видео слишком длинное: я принимаю до {max_s} с. Пришлите, пожалуйста, видео покороче.",
    video_too_many_pixels=(
        "Слишком большое изображение в видео: я принимаю кадры до {max_mp} мегапикселей (Full HD — 2,1). "
        "Пришлите видео поменьше."
    ),
    video_busy="Сейчас я занят другими видео. Попробуйте ещё раз через {wait}.",
    video_corrupt="Не удалось прочитать видео: похоже, файл повреждён. Пришлите его ещё раз или попробуйте другое.",
    video_timeout="Извините, видео обрабатывалось слишком долго, и я прервал работу. Пришлите видео покороче.",
    video_in_album="видео в альбоме не обрабатываются: пришлите каждое видео отдельно",
    result_too_large="Результат больше, чем Telegram позволяет мне отправить (50 МБ). Пришлите видео покороче.",
    seconds="{n} с",
    minutes="{n} мин",
    busy="Сейчас я занят снимками других людей. Попробуйте ещё раз через {seconds} с.",
    unavailable="Я временно недоступен. Попробуйте ещё раз через минуту.",
    unsupported=(
        "Я принимаю фото, альбомы, файлы-изображения (JPEG, PNG, WebP, HEIC, AVIF), GIF, видео (MP4, MOV, WebM, MKV) "
        "и видеосообщения. Стикеры, голосовые сообщения и другие файлы не поддерживаются."
    ),
    too_large="Файл слишком большой: я принимаю файлы до {max_mb} МБ. Пришлите, пожалуйста, файл поменьше.",
    too_many_pixels="В снимке слишком много пикселей: я принимаю до {max_mp} мегапикселей. Пришлите снимок поменьше.",
    too_slow="Этот снимок слишком большой, я не успею закрыть на нём лица. Пришлите снимок поменьше.",
    corrupt="Не удалось прочитать снимок: похоже, файл повреждён. Пришлите его ещё раз или попробуйте другой.",
    failed="При обработке снимка что-то пошло не так. Попробуйте ещё раз.",
    timeout="Извините, снимок обрабатывался слишком долго, и я прервал работу. Попробуйте позже.",
    not_allowed="Извините, это закрытый бот, и он вам недоступен.",
    album_partly_failed="Снимки {positions} обработать не удалось: {reason}",
    choose_faces="👤 Выбрать лица",
    choose_in_album="Выберите лица на снимке из этого альбома:",
    choose_prompt=(
        "Найденные лица пронумерованы. Нажмите на номер, чтобы открыть (○) или закрыть (✓) лицо, затем «Готово». "
        "Открыть лицо — ваше решение: его увидят все, кому вы отправите снимок."
    ),
    choose_done="Готово",
    cover_all="Закрыть все",
    show_all="Открыть все",
    chosen_covered=(
        "Закрыто лиц: {covered} из {count}; открыто по вашему выбору: {shown}. Проверьте, прежде чем делиться."
    ),
    choose_expired="Этот результат уже слишком старый, чтобы его менять. Пришлите фото ещё раз.",
    choose_not_yours="Выбрать лица может только тот, кто прислал этот снимок.",
    choose_gone="Этот снимок удалён, менять нечего. Пришлите фото ещё раз.",
    choose_too_often="Этот снимок меняли уже много раз. Пришлите фото ещё раз, чтобы начать заново.",
    strict_again="Я уже внимательно смотрел на это фото. Пришлите его ещё раз, если нужен новый поиск.",
    slow_down="Слишком много сообщений подряд. Я снова отвечу через минуту.",
    regions_covered="Закрыто отмеченных вами областей: {count}.",
    edit="✏️ Изменить",
    editor_unauthorized=(
        "Редактор открыт слишком давно или не из Telegram. Закройте его и снова нажмите «✏️ Изменить» под снимком."
    ),
    editor_too_fast="Слишком много запросов подряд. Подождите минуту и попробуйте снова.",
    editor_too_many_regions="На одном снимке можно отметить не больше {max} областей.",
    editor_bad_choice="Этот выбор не подходит к снимку. Закройте редактор и откройте его снова.",
    editor={
        "title": "Какие лица закрыть",
        "hint": (
            "Нажмите на лицо, чтобы открыть или закрыть его; открыть лицо — ваше решение. "
            "Проведите по пропущенному лицу, чтобы закрыть и его."
        ),
        "status": "Закрыто лиц: {covered} из {count} · отмечено областей: {regions}",
        "apply": "Применить",
        "applying": "Рисую…",
        "undo": "Отменить",
        "box": "Прямоугольник",
        "ellipse": "Овал",
        "delete": "Удалить область",
        "zoom_in": "Увеличить",
        "zoom_out": "Уменьшить",
        "fit": "Весь снимок",
        "too_many": "На одном снимке можно отметить не больше {max} областей.",
        "loading": "Загружаю снимок…",
        "outside": "Откройте редактор кнопкой «✏️ Изменить» под снимком в Telegram.",
        "unreadable": "Этот снимок здесь не показать. Выберите лица кнопкой «👤 Выбрать лица» под ним в чате.",
        "offline": "Нет связи. Попробуйте ещё раз.",
    },
    commands={
        "start": "Что умеет бот",
        "help": "Как пользоваться, насколько хорошо работает, что хранится",
        "mode": "Выбрать фильтр",
        "strict": "Поискать лица внимательнее (ответом на фото)",
    },
)


def duration_text(seconds: float, texts: Texts) -> str:
    """How long to wait, as a person would say it: "40 s", or "3 min" from 90 s up."""
    if seconds < 90:
        return texts.seconds.format(n=max(1, round(seconds)))
    return texts.minutes.format(n=round(seconds / 60))


def texts_for(language_code: str | None) -> Texts:
    """Russian for Telegram languages starting with "ru", English for everything else."""
    return RUSSIAN if (language_code or "").lower().startswith("ru") else ENGLISH
