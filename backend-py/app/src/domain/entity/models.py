from typing import Optional
import datetime
import uuid

from pgvector.sqlalchemy.vector import VECTOR
from sqlalchemy import BigInteger, Boolean, CheckConstraint, Column, Computed, DateTime, ForeignKeyConstraint, Identity, Index, Integer, LargeBinary, PrimaryKeyConstraint, REAL, SmallInteger, String, Text, UniqueConstraint, Uuid, text
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR
from sqlmodel import Field, Relationship, SQLModel

class Users(SQLModel, table=True):
    __table_args__ = (
        CheckConstraint('email_change_confirm_status >= 0 AND email_change_confirm_status <= 2', name='users_email_change_confirm_status_check'),
        PrimaryKeyConstraint('id', name='users_pkey'),
        UniqueConstraint('phone', name='users_phone_key'),
        Index('users_email_partial_key', 'email', postgresql_where='(is_sso_user = false)', unique=True),
        Index('users_instance_id_idx', 'instance_id'),
        Index('users_is_anonymous_idx', 'is_anonymous'),
        {'comment': "Development stand-in for Supabase Auth's users table (created by "
                'supabase_compat.sql, never present in this form on a real '
                'project).',
     'schema': 'auth'}
    )

    id: uuid.UUID = Field(sa_column=Column('id', Uuid, primary_key=True, server_default=text('gen_random_uuid()')))
    is_sso_user: bool = Field(sa_column=Column('is_sso_user', Boolean, nullable=False, server_default=text('false')))
    is_anonymous: bool = Field(sa_column=Column('is_anonymous', Boolean, nullable=False, server_default=text('false')))
    instance_id: Optional[uuid.UUID] = Field(default=None, sa_column=Column('instance_id', Uuid))
    aud: Optional[str] = Field(default=None, sa_column=Column('aud', String(255)))
    role: Optional[str] = Field(default=None, sa_column=Column('role', String(255)))
    email: Optional[str] = Field(default=None, sa_column=Column('email', String(255)))
    encrypted_password: Optional[str] = Field(default=None, sa_column=Column('encrypted_password', String(255)))
    email_confirmed_at: Optional[datetime.datetime] = Field(default=None, sa_column=Column('email_confirmed_at', DateTime(True)))
    invited_at: Optional[datetime.datetime] = Field(default=None, sa_column=Column('invited_at', DateTime(True)))
    confirmation_token: Optional[str] = Field(default=None, sa_column=Column('confirmation_token', String(255)))
    confirmation_sent_at: Optional[datetime.datetime] = Field(default=None, sa_column=Column('confirmation_sent_at', DateTime(True)))
    recovery_token: Optional[str] = Field(default=None, sa_column=Column('recovery_token', String(255)))
    recovery_sent_at: Optional[datetime.datetime] = Field(default=None, sa_column=Column('recovery_sent_at', DateTime(True)))
    email_change_token_new: Optional[str] = Field(default=None, sa_column=Column('email_change_token_new', String(255)))
    email_change: Optional[str] = Field(default=None, sa_column=Column('email_change', String(255)))
    email_change_sent_at: Optional[datetime.datetime] = Field(default=None, sa_column=Column('email_change_sent_at', DateTime(True)))
    last_sign_in_at: Optional[datetime.datetime] = Field(default=None, sa_column=Column('last_sign_in_at', DateTime(True)))
    raw_app_meta_data: Optional[object] = Field(default=None, sa_column=Column('raw_app_meta_data', JSONB))
    raw_user_meta_data: Optional[object] = Field(default=None, sa_column=Column('raw_user_meta_data', JSONB))
    is_super_admin: Optional[bool] = Field(default=None, sa_column=Column('is_super_admin', Boolean))
    created_at: Optional[datetime.datetime] = Field(default=None, sa_column=Column('created_at', DateTime(True)))
    updated_at: Optional[datetime.datetime] = Field(default=None, sa_column=Column('updated_at', DateTime(True)))
    phone: Optional[str] = Field(default=None, sa_column=Column('phone', Text))
    phone_confirmed_at: Optional[datetime.datetime] = Field(default=None, sa_column=Column('phone_confirmed_at', DateTime(True)))
    phone_change: Optional[str] = Field(default=None, sa_column=Column('phone_change', Text, server_default=text("''::text")))
    phone_change_token: Optional[str] = Field(default=None, sa_column=Column('phone_change_token', String(255), server_default=text("''::character varying")))
    phone_change_sent_at: Optional[datetime.datetime] = Field(default=None, sa_column=Column('phone_change_sent_at', DateTime(True)))
    confirmed_at: Optional[datetime.datetime] = Field(default=None, sa_column=Column('confirmed_at', DateTime(True), Computed('LEAST(email_confirmed_at, phone_confirmed_at)', persisted=True)))
    email_change_token_current: Optional[str] = Field(default=None, sa_column=Column('email_change_token_current', String(255), server_default=text("''::character varying")))
    email_change_confirm_status: Optional[int] = Field(default=None, sa_column=Column('email_change_confirm_status', SmallInteger, server_default=text('0')))
    banned_until: Optional[datetime.datetime] = Field(default=None, sa_column=Column('banned_until', DateTime(True)))
    reauthentication_token: Optional[str] = Field(default=None, sa_column=Column('reauthentication_token', String(255), server_default=text("''::character varying")))
    reauthentication_sent_at: Optional[datetime.datetime] = Field(default=None, sa_column=Column('reauthentication_sent_at', DateTime(True)))
    deleted_at: Optional[datetime.datetime] = Field(default=None, sa_column=Column('deleted_at', DateTime(True)))

    general_users: 'GeneralUsers' = Relationship(back_populates='users', sa_relationship_kwargs={'uselist': False})


class DocumentChunkCommonLexemes(SQLModel, table=True):
    __tablename__ = 'document_chunk_common_lexemes'
    __table_args__ = (
        CheckConstraint('frequency > 0::double precision AND frequency <= 1::double precision', name='document_chunk_common_lexemes_frequency_check'),
        PrimaryKeyConstraint('lexeme', name='document_chunk_common_lexemes_pkey'),
        {'comment': 'Lexemes of document_chunks.fts that the last ANALYZE listed '
                '(pg_stats.most_common_elems), with their share of the chunks. '
                'Kept by refresh_document_chunk_common_lexemes(); read by '
                'private.match_document_chunks_text to choose between its two '
                'scans (a lexeme with a share of at least 5% is common: the table '
                'in order for a query of common words, the GIN index for a '
                'selective one) and for the inverse document frequency of its BM25 '
                'rank.'}
    )

    lexeme: str = Field(sa_column=Column('lexeme', Text, primary_key=True))
    frequency: float = Field(sa_column=Column('frequency', REAL, nullable=False))


class DocumentChunkTextStatistics(SQLModel, table=True):
    __tablename__ = 'document_chunk_text_statistics'
    __table_args__ = (
        CheckConstraint('average_lexemes > 0::double precision', name='document_chunk_text_statistics_average_lexemes_check'),
        CheckConstraint('only_row', name='document_chunk_text_statistics_only_row_check'),
        CheckConstraint('rare_frequency > 0::double precision AND rare_frequency <= 1::double precision', name='document_chunk_text_statistics_rare_frequency_check'),
        PrimaryKeyConstraint('only_row', name='document_chunk_text_statistics_pkey'),
        {'comment': 'One row: statistics of document_chunks.fts as the last ANALYZE '
                'sampled them (pg_stats), for the BM25 rank of '
                'private.match_document_chunks_text. average_lexemes: distinct '
                'lexemes of a chunk on average; rare_frequency: the smallest share '
                'of chunks among the lexemes of document_chunk_common_lexemes, '
                'taken for any lexeme not listed there. Kept by '
                'refresh_document_chunk_common_lexemes(); no row before the first '
                'ANALYZE.'}
    )

    only_row: bool = Field(sa_column=Column('only_row', Boolean, primary_key=True, server_default=text('true')))
    average_lexemes: float = Field(sa_column=Column('average_lexemes', REAL, nullable=False))
    rare_frequency: float = Field(sa_column=Column('rare_frequency', REAL, nullable=False))


class GeneralUsers(SQLModel, table=True):
    __tablename__ = 'general_users'
    __table_args__ = (
        CheckConstraint("account_name ~ '^[a-z0-9_]{3,32}$'::text", name='general_users_account_name_format'),
        ForeignKeyConstraint(['id'], ['auth.users.id'], ondelete='CASCADE', name='general_users_id_fkey'),
        PrimaryKeyConstraint('id', name='general_users_pkey'),
        UniqueConstraint('account_name', name='general_users_account_name_key'),
        {'comment': 'Application user, one row per auth.users row (same id). Created '
                'automatically by the handle_new_user trigger on signup (or by '
                'ensure_general_user for older accounts). Readable by every '
                'signed-in user so member names can be shown in rooms and members '
                'added by account name.'}
    )

    id: uuid.UUID = Field(sa_column=Column('id', Uuid, primary_key=True, comment='Same uuid as auth.users.id; deleting the auth user deletes this row and, by cascade, everything the user owns.'))
    display_name: str = Field(sa_column=Column('display_name', Text, nullable=False, server_default=text("''::text"), comment="Free-form name shown in the UI. Initialised from the signup metadata (display_name, full_name or name) or the email's local part."))
    account_name: str = Field(sa_column=Column('account_name', Text, nullable=False, comment='Unique handle used to add a user to a room: 3-32 characters of a-z, 0-9 and _. Initialised from the signup metadata account_name, or derived from the email.'))
    created_at: datetime.datetime = Field(sa_column=Column('created_at', DateTime(True), nullable=False, server_default=text('now()')))
    updated_at: datetime.datetime = Field(sa_column=Column('updated_at', DateTime(True), nullable=False, server_default=text('now()')))
    avatar_url: Optional[str] = Field(default=None, sa_column=Column('avatar_url', Text, comment='Optional picture URL (initialised from OAuth metadata avatar_url/picture when present).'))

    users: 'Users' = Relationship(back_populates='general_users')
    virtual_users: list['VirtualUsers'] = Relationship(back_populates='owner')
    chat_rooms: list['ChatRooms'] = Relationship(back_populates='general_users')
    user_profiles: 'UserProfiles' = Relationship(back_populates='user', sa_relationship_kwargs={'uselist': False})
    documents: list['Documents'] = Relationship(back_populates='owner')
    messages: list['Messages'] = Relationship(back_populates='sender_user')
    user_chats: list['UserChats'] = Relationship(back_populates='user')


class VirtualUsers(SQLModel, table=True):
    __tablename__ = 'virtual_users'
    __table_args__ = (
        CheckConstraint('NOT is_default OR owner_id IS NULL', name='virtual_users_default_is_admin'),
        CheckConstraint('char_length(btrim(name)) >= 1 AND char_length(name) <= 100', name='virtual_users_name_length'),
        CheckConstraint('max_tokens IS NULL OR max_tokens >= 1 AND max_tokens <= 32000', name='virtual_users_max_tokens_range'),
        CheckConstraint('temperature IS NULL OR temperature >= 0::double precision AND temperature <= 2::double precision', name='virtual_users_temperature_range'),
        ForeignKeyConstraint(['owner_id'], ['general_users.id'], ondelete='CASCADE', name='virtual_users_owner_id_fkey'),
        PrimaryKeyConstraint('id', name='virtual_users_pkey'),
        Index('virtual_users_owner_id_idx', 'owner_id'),
        Index('virtual_users_single_admin_default', 'is_default', postgresql_where='(is_default AND (owner_id IS NULL))', unique=True),
        {'comment': 'AI personas a chat room can talk to. owner_id null = provided by '
                'the admins for everyone; otherwise a private persona of that '
                'user.'}
    )

    id: int = Field(sa_column=Column('id', BigInteger, Identity(always=True, start=1, increment=1, minvalue=1, maxvalue=9223372036854775807, cycle=False, cache=1), primary_key=True, autoincrement=True))
    name: str = Field(sa_column=Column('name', Text, nullable=False))
    description: str = Field(sa_column=Column('description', Text, nullable=False, server_default=text("''::text")))
    system_prompt: str = Field(sa_column=Column('system_prompt', Text, nullable=False, comment='System prompt sent to the model for this persona (the retrieved context is added by the backend).'))
    is_default: bool = Field(sa_column=Column('is_default', Boolean, nullable=False, server_default=text('false'), comment="The admins' default persona, used when a room has none and the user has no preferred persona. At most one row (owner_id null) may have it."))
    created_at: datetime.datetime = Field(sa_column=Column('created_at', DateTime(True), nullable=False, server_default=text('now()')))
    updated_at: datetime.datetime = Field(sa_column=Column('updated_at', DateTime(True), nullable=False, server_default=text('now()')))
    owner_id: Optional[uuid.UUID] = Field(default=None, sa_column=Column('owner_id', Uuid, comment='Owner of a private persona. NULL = admin-provided persona visible to every signed-in user (manage those from the dashboard).'))
    model: Optional[str] = Field(default=None, sa_column=Column('model', Text, comment="Chat model name for this persona. NULL = the backend's configured default model."))
    temperature: Optional[float] = Field(default=None, sa_column=Column('temperature', REAL, comment="Sampling temperature 0..2. NULL = the backend's default."))
    max_tokens: Optional[int] = Field(default=None, sa_column=Column('max_tokens', Integer, comment="Most tokens an answer may have (1..32000). NULL = the backend's LLM_MAX_TOKENS."))

    owner: Optional['GeneralUsers'] = Relationship(back_populates='virtual_users')
    chat_rooms: list['ChatRooms'] = Relationship(back_populates='virtual_user')
    user_profiles: list['UserProfiles'] = Relationship(back_populates='default_virtual_user')
    messages: list['Messages'] = Relationship(back_populates='sender_virtual_user')


class ChatRooms(SQLModel, table=True):
    __tablename__ = 'chat_rooms'
    __table_args__ = (
        CheckConstraint("ai_replies = ANY (ARRAY['mention'::text, 'always'::text])", name='chat_rooms_ai_replies_check'),
        CheckConstraint('char_length(btrim(title)) >= 1 AND char_length(title) <= 200', name='chat_rooms_title_length'),
        ForeignKeyConstraint(['created_by'], ['general_users.id'], ondelete='CASCADE', name='chat_rooms_created_by_fkey'),
        ForeignKeyConstraint(['virtual_user_id'], ['virtual_users.id'], ondelete='SET NULL', name='chat_rooms_virtual_user_id_fkey'),
        PrimaryKeyConstraint('id', name='chat_rooms_pkey'),
        Index('chat_rooms_created_by_idx', 'created_by'),
        Index('chat_rooms_virtual_user_id_idx', 'virtual_user_id'),
        {'comment': 'A conversation between one or more users and an AI persona. '
                'Visible to its members (user_chats) and its creator; only the '
                'creator (owner) may rename, delete or manage members.'}
    )

    id: int = Field(sa_column=Column('id', BigInteger, Identity(always=True, start=1, increment=1, minvalue=1, maxvalue=9223372036854775807, cycle=False, cache=1), primary_key=True, autoincrement=True))
    title: str = Field(sa_column=Column('title', Text, nullable=False))
    created_by: uuid.UUID = Field(sa_column=Column('created_by', Uuid, nullable=False, comment="The room's owner. Deleting that user deletes the room."))
    created_at: datetime.datetime = Field(sa_column=Column('created_at', DateTime(True), nullable=False, server_default=text('now()')))
    updated_at: datetime.datetime = Field(sa_column=Column('updated_at', DateTime(True), nullable=False, server_default=text('now()')))
    virtual_user_id: Optional[int] = Field(default=None, sa_column=Column('virtual_user_id', BigInteger, comment="Persona answering in this room. NULL = the creator's default persona (user_profiles.default_virtual_user_id), else the admins' default."))
    ai_replies: Optional[str] = Field(default=None, sa_column=Column('ai_replies', Text, comment="When the persona answers a member's message: 'mention' (the message names it as @Name, case-insensitive) or 'always'. NULL: 'always' while the room has one member, 'mention' with more."))

    general_users: 'GeneralUsers' = Relationship(back_populates='chat_rooms')
    virtual_user: Optional['VirtualUsers'] = Relationship(back_populates='chat_rooms')
    documents: list['Documents'] = Relationship(back_populates='chat_room')
    messages: list['Messages'] = Relationship(back_populates='chat_room')
    user_chats: list['UserChats'] = Relationship(back_populates='chat_room')


class UserProfiles(SQLModel, table=True):
    __tablename__ = 'user_profiles'
    __table_args__ = (
        ForeignKeyConstraint(['default_virtual_user_id'], ['virtual_users.id'], ondelete='SET NULL', name='user_profiles_default_virtual_user_id_fkey'),
        ForeignKeyConstraint(['user_id'], ['general_users.id'], ondelete='CASCADE', name='user_profiles_user_id_fkey'),
        PrimaryKeyConstraint('user_id', name='user_profiles_pkey'),
        Index('user_profiles_default_virtual_user_id_idx', 'default_virtual_user_id'),
        {'comment': 'Per-user preferences, one row per general_users row (created '
                'together with it). Private to the user.'}
    )

    user_id: uuid.UUID = Field(sa_column=Column('user_id', Uuid, primary_key=True))
    settings: object = Field(sa_column=Column('settings', JSONB, nullable=False, server_default=text("'{}'::jsonb"), comment='Free-form UI/client settings (JSON object).'))
    created_at: datetime.datetime = Field(sa_column=Column('created_at', DateTime(True), nullable=False, server_default=text('now()')))
    updated_at: datetime.datetime = Field(sa_column=Column('updated_at', DateTime(True), nullable=False, server_default=text('now()')))
    default_virtual_user_id: Optional[int] = Field(default=None, sa_column=Column('default_virtual_user_id', BigInteger, comment="Persona used for new rooms of this user. NULL = the admins' default persona (virtual_users.is_default). Must be a persona the user can see."))
    preferred_language: Optional[str] = Field(default=None, sa_column=Column('preferred_language', Text, comment='Preferred answer language (e.g. "en", "ja"). NULL = answer in the language of the question.'))
    bio: Optional[str] = Field(default=None, sa_column=Column('bio', Text))

    default_virtual_user: Optional['VirtualUsers'] = Relationship(back_populates='user_profiles')
    user: 'GeneralUsers' = Relationship(back_populates='user_profiles')


class Documents(SQLModel, table=True):
    __table_args__ = (
        CheckConstraint('index_progress >= 0::double precision AND index_progress <= 1::double precision', name='documents_index_progress_check'),
        CheckConstraint('queue_turn >= 0', name='documents_queue_turn_check'),
        CheckConstraint("status = ANY (ARRAY['pending'::text, 'processing'::text, 'ready'::text, 'failed'::text])", name='documents_status_check'),
        CheckConstraint("visibility <> 'room'::text OR chat_room_id IS NOT NULL", name='documents_room_visibility_needs_room'),
        CheckConstraint("visibility = ANY (ARRAY['private'::text, 'room'::text, 'shared'::text])", name='documents_visibility_check'),
        ForeignKeyConstraint(['chat_room_id'], ['chat_rooms.id'], ondelete='CASCADE', name='documents_chat_room_id_fkey'),
        ForeignKeyConstraint(['owner_id'], ['general_users.id'], ondelete='CASCADE', name='documents_owner_id_fkey'),
        PrimaryKeyConstraint('id', name='documents_pkey'),
        Index('documents_centroid_hnsw_idx', 'centroid', postgresql_ops={'centroid': 'vector_cosine_ops'}, postgresql_using='hnsw'),
        Index('documents_chat_room_id_idx', 'chat_room_id'),
        Index('documents_fair_queue_idx', 'queue_turn', 'next_attempt_at', postgresql_where="(status = ANY (ARRAY['pending'::text, 'processing'::text]))"),
        Index('documents_owner_id_idx', 'owner_id'),
        Index('documents_waiting_owner_idx', 'owner_id', postgresql_where="(status = ANY (ARRAY['pending'::text, 'processing'::text]))"),
        Index('documents_work_queue_idx', 'status', 'next_attempt_at', postgresql_where="(status = ANY (ARRAY['pending'::text, 'processing'::text]))"),
        {'comment': 'Source documents for retrieval. Admins add shared knowledge by '
                'inserting a row with just title and content (owner_id stays NULL, '
                'visibility becomes shared); the backend worker then chunks and '
                'embeds it (status pending -> processing -> ready/failed). Editing '
                'content re-queues it.'}
    )

    id: int = Field(sa_column=Column('id', BigInteger, Identity(always=True, start=1, increment=1, minvalue=1, maxvalue=9223372036854775807, cycle=False, cache=1), primary_key=True, autoincrement=True))
    title: str = Field(sa_column=Column('title', Text, nullable=False))
    mime_type: str = Field(sa_column=Column('mime_type', Text, nullable=False, server_default=text("'text/plain'::text")))
    content: str = Field(sa_column=Column('content', Text, nullable=False, comment='Full extracted text (Markdown/plain text). Changing it resets status to pending so it is re-indexed.'))
    visibility: str = Field(sa_column=Column('visibility', Text, nullable=False, server_default=text("'private'::text"), comment='private (owner only), room (members of chat_room_id) or shared (everyone; forced when owner_id is NULL, not allowed for user-owned rows).'))
    status: str = Field(sa_column=Column('status', Text, nullable=False, server_default=text("'pending'::text"), comment='Indexing state: pending (queued), processing (a worker claimed it), ready (chunks searchable), failed (see error; retried until attempts runs out). Only ready documents are searched.'))
    attempts: int = Field(sa_column=Column('attempts', Integer, nullable=False, server_default=text('0'), comment='Number of indexing attempts made for the current content.'))
    next_attempt_at: datetime.datetime = Field(sa_column=Column('next_attempt_at', DateTime(True), nullable=False, server_default=text('now()'), comment='Earliest time a worker may (re)try indexing (backoff after failures).'))
    chunk_count: int = Field(sa_column=Column('chunk_count', Integer, nullable=False, server_default=text('0'), comment='Number of chunks currently stored for the document.'))
    metadata_: object = Field(sa_column=Column('metadata', JSONB, nullable=False, server_default=text("'{}'::jsonb"), comment='Free-form JSON (e.g. page count, language, uploader notes).'))
    created_at: datetime.datetime = Field(sa_column=Column('created_at', DateTime(True), nullable=False, server_default=text('now()')))
    updated_at: datetime.datetime = Field(sa_column=Column('updated_at', DateTime(True), nullable=False, server_default=text('now()')))
    queue_turn: int = Field(sa_column=Column('queue_turn', Integer, nullable=False, server_default=text('0'), comment="The document's place among its owner's waiting (pending or processing) documents when it entered the queue (at most 100): 0 when the owner had none. The indexing worker takes due documents by queue_turn, then next_attempt_at, so every owner's first waiting document comes before anyone's second. Set by the documents_prepare trigger."))
    owner_id: Optional[uuid.UUID] = Field(default=None, sa_column=Column('owner_id', Uuid, comment='Uploader. NULL = the shared knowledge base managed by admins (visible to every signed-in user).'))
    chat_room_id: Optional[int] = Field(default=None, sa_column=Column('chat_room_id', BigInteger, comment="Room the document is attached to. Required when visibility = room; such documents are visible to that room's members and searched only in that room."))
    source: Optional[str] = Field(default=None, sa_column=Column('source', Text, comment='Original file name or URL (informational).'))
    error: Optional[str] = Field(default=None, sa_column=Column('error', Text, comment='Last indexing error message, NULL when none.'))
    content_hash: Optional[str] = Field(default=None, sa_column=Column('content_hash', Text, comment='sha256 (hex) of content, maintained by the documents_prepare trigger.'))
    indexed_hash: Optional[str] = Field(default=None, sa_column=Column('indexed_hash', Text, comment='content_hash of the content the current chunks were built from (set by the worker). Differs from content_hash while re-indexing is due.'))
    embedding_model: Optional[str] = Field(default=None, sa_column=Column('embedding_model', Text, comment='Embedding model used for the current chunks.'))
    original: Optional[bytes] = Field(default=None, sa_column=Column('original', LargeBinary, comment='The uploaded file (PDF or HTML) until the worker has extracted its text into content; NULL for text documents and once extracted. A document with an original is parsed before it is chunked.'))
    original_sha256: Optional[str] = Field(default=None, sa_column=Column('original_sha256', Text, comment='sha256 (hex) of the uploaded file, set by the API: the same file uploaded again to the same place is the same document. Kept after extraction.'))
    centroid: Optional[object] = Field(default=None, sa_column=Column('centroid', VECTOR(384), comment="The mean of the embeddings of the document's chunks (of its embedding_model), for the page leg of public.hybrid_search; written with the chunks (and by make reembed); NULL without chunks."))
    index_progress: Optional[float] = Field(default=None, sa_column=Column('index_progress', REAL, comment='While a large document is indexed a slice per turn: the share of its chunks embedded so far (0 to 1). NULL otherwise. Written by the indexing worker.'))

    chat_room: Optional['ChatRooms'] = Relationship(back_populates='documents')
    owner: Optional['GeneralUsers'] = Relationship(back_populates='documents')
    document_chunks: list['DocumentChunks'] = Relationship(back_populates='document')


class Messages(SQLModel, table=True):
    __table_args__ = (
        CheckConstraint("role = ANY (ARRAY['user'::text, 'assistant'::text, 'system'::text])", name='messages_role_check'),
        CheckConstraint("status = ANY (ARRAY['complete'::text, 'failed'::text])", name='messages_status_check'),
        ForeignKeyConstraint(['chat_room_id'], ['chat_rooms.id'], ondelete='CASCADE', name='messages_chat_room_id_fkey'),
        ForeignKeyConstraint(['sender_user_id'], ['general_users.id'], ondelete='SET NULL', name='messages_sender_user_id_fkey'),
        ForeignKeyConstraint(['sender_virtual_user_id'], ['virtual_users.id'], ondelete='SET NULL', name='messages_sender_virtual_user_id_fkey'),
        PrimaryKeyConstraint('id', name='messages_pkey'),
        Index('messages_chat_room_id_id_idx', 'chat_room_id', 'id'),
        Index('messages_sender_user_id_idx', 'sender_user_id'),
        Index('messages_sender_virtual_user_id_idx', 'sender_virtual_user_id'),
        {'comment': 'Messages of a chat room, in id order. Readable by room members. '
                'Deleted together with the room.'}
    )

    id: int = Field(sa_column=Column('id', BigInteger, Identity(always=True, start=1, increment=1, minvalue=1, maxvalue=9223372036854775807, cycle=False, cache=1), primary_key=True, autoincrement=True))
    chat_room_id: int = Field(sa_column=Column('chat_room_id', BigInteger, nullable=False))
    role: str = Field(sa_column=Column('role', Text, nullable=False, comment='user (a member wrote it), assistant (AI answer) or system.'))
    content: str = Field(sa_column=Column('content', Text, nullable=False))
    status: str = Field(sa_column=Column('status', Text, nullable=False, server_default=text("'complete'::text"), comment='complete, or failed when the AI answer could not be produced.'))
    metadata_: object = Field(sa_column=Column('metadata', JSONB, nullable=False, server_default=text("'{}'::jsonb"), comment='JSON: sources (retrieved chunks cited as [n]), model, token usage, latency, error details.'))
    created_at: datetime.datetime = Field(sa_column=Column('created_at', DateTime(True), nullable=False, server_default=text('now()')))
    updated_at: datetime.datetime = Field(sa_column=Column('updated_at', DateTime(True), nullable=False, server_default=text('now()')))
    sender_user_id: Optional[uuid.UUID] = Field(default=None, sa_column=Column('sender_user_id', Uuid, comment='Human author for role user. NULL for assistant/system messages (or when the author was deleted).'))
    sender_virtual_user_id: Optional[int] = Field(default=None, sa_column=Column('sender_virtual_user_id', BigInteger, comment='Persona that produced an assistant message.'))

    chat_room: 'ChatRooms' = Relationship(back_populates='messages')
    sender_user: Optional['GeneralUsers'] = Relationship(back_populates='messages')
    sender_virtual_user: Optional['VirtualUsers'] = Relationship(back_populates='messages')


class UserChats(SQLModel, table=True):
    __tablename__ = 'user_chats'
    __table_args__ = (
        CheckConstraint("role = ANY (ARRAY['owner'::text, 'member'::text])", name='user_chats_role_check'),
        ForeignKeyConstraint(['chat_room_id'], ['chat_rooms.id'], ondelete='CASCADE', name='user_chats_chat_room_id_fkey'),
        ForeignKeyConstraint(['user_id'], ['general_users.id'], ondelete='CASCADE', name='user_chats_user_id_fkey'),
        PrimaryKeyConstraint('chat_room_id', 'user_id', name='user_chats_pkey'),
        Index('user_chats_user_id_idx', 'user_id'),
        {'comment': 'Room membership. The creator adds their own row with role owner '
                'right after creating the room, then adds other users (role '
                'member). Members may leave (delete their row); the owner may '
                'remove anyone.'}
    )

    user_id: uuid.UUID = Field(sa_column=Column('user_id', Uuid, primary_key=True))
    chat_room_id: int = Field(sa_column=Column('chat_room_id', BigInteger, primary_key=True))
    role: str = Field(sa_column=Column('role', Text, nullable=False, server_default=text("'member'::text"), comment="owner (the room creator's own row) or member."))
    joined_at: datetime.datetime = Field(sa_column=Column('joined_at', DateTime(True), nullable=False, server_default=text('now()'), comment='When the user was added to the room.'))
    created_at: datetime.datetime = Field(sa_column=Column('created_at', DateTime(True), nullable=False, server_default=text('now()')))

    chat_room: 'ChatRooms' = Relationship(back_populates='user_chats')
    user: 'GeneralUsers' = Relationship(back_populates='user_chats')


class DocumentChunks(SQLModel, table=True):
    __tablename__ = 'document_chunks'
    __table_args__ = (
        CheckConstraint('(char_start IS NULL) = (char_end IS NULL) AND char_start <= char_end', name='document_chunks_span_check'),
        CheckConstraint('(page_start IS NULL) = (page_end IS NULL) AND page_start <= page_end', name='document_chunks_pages_check'),
        ForeignKeyConstraint(['document_id'], ['documents.id'], ondelete='CASCADE', name='document_chunks_document_id_fkey'),
        PrimaryKeyConstraint('id', name='document_chunks_pkey'),
        UniqueConstraint('document_id', 'chunk_index', name='document_chunks_document_id_chunk_index_key'),
        Index('document_chunks_embedding_hnsw_idx', 'embedding', postgresql_ops={'embedding': 'vector_cosine_ops'}, postgresql_using='hnsw'),
        Index('document_chunks_embedding_model_idx', 'embedding_model'),
        Index('document_chunks_fts_idx', 'fts', postgresql_using='gin', postgresql_with={'fastupdate': 'off'}),
        {'comment': 'Retrieval units of a document with their embeddings, written only '
                "by the backend's indexing worker (service session). Readable by "
                'users who can read the parent document.'}
    )

    id: int = Field(sa_column=Column('id', BigInteger, Identity(always=True, start=1, increment=1, minvalue=1, maxvalue=9223372036854775807, cycle=False, cache=1), primary_key=True, autoincrement=True))
    document_id: int = Field(sa_column=Column('document_id', BigInteger, nullable=False))
    chunk_index: int = Field(sa_column=Column('chunk_index', Integer, nullable=False, comment='0-based position of the chunk within its document.'))
    content: str = Field(sa_column=Column('content', Text, nullable=False))
    heading_path: str = Field(sa_column=Column('heading_path', Text, nullable=False, server_default=text("''::text"), comment='Headings above the chunk joined with " > " (e.g. "Install > Linux"); empty when none.'))
    token_count: int = Field(sa_column=Column('token_count', Integer, nullable=False, comment="Token count of content (as counted by the backend's tokenizer)."))
    embedding: object = Field(sa_column=Column('embedding', VECTOR(384), nullable=False, comment='384-dimensional embedding: the size of the offline MiniLM model (all-MiniLM-L6-v2) and of OpenAI text-embedding-3 models requested with dimensions=384, so either backend fits one column. Compare only rows with the same embedding_model.'))
    embedding_model: str = Field(sa_column=Column('embedding_model', Text, nullable=False, comment='Model that produced the embedding; queries must filter on it because vectors of different models are not comparable.'))
    ts_config: str = Field(sa_column=Column('ts_config', Text, nullable=False, server_default=text("'english'::text"), comment='Name of the text-search configuration of fts (e.g. english, simple), as regconfig prints it. Text, not regconfig: a reg* column blocks in-place Postgres upgrades (pg_upgrade).'))
    fts: object = Field(sa_column=Column('fts', TSVECTOR, nullable=False, comment='tsvector of content in the ts_config configuration, for keyword / hybrid search; kept by the document_chunks_set_fts trigger.'))
    metadata_: object = Field(sa_column=Column('metadata', JSONB, nullable=False, server_default=text("'{}'::jsonb")))
    created_at: datetime.datetime = Field(sa_column=Column('created_at', DateTime(True), nullable=False, server_default=text('now()')))
    char_start: Optional[int] = Field(default=None, sa_column=Column('char_start', Integer, comment="Offset (0-based, in characters) in documents.content of the chunk's first character; NULL when unknown."))
    char_end: Optional[int] = Field(default=None, sa_column=Column('char_end', Integer, comment="Offset in documents.content just past the chunk's last character (content[char_start:char_end] holds the chunk's words); NULL when unknown."))
    page_start: Optional[int] = Field(default=None, sa_column=Column('page_start', Integer, comment='First PDF page (from 1) the chunk covers; NULL for documents without pages.'))
    page_end: Optional[int] = Field(default=None, sa_column=Column('page_end', Integer, comment='Last PDF page the chunk covers (equal to page_start for one page); NULL for documents without pages.'))

    document: 'Documents' = Relationship(back_populates='document_chunks')
